"""Microsoft Graph client: an app-only token from MSAL and sendMail over one requests session.

One client per process, so MSAL's token cache and the HTTP connection pool are reused across jobs.
Against the sandbox only the authority host, the Graph base URL and the CA bundle differ.
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

import msal
import requests
import urllib3
from requests.adapters import HTTPAdapter

from common.errors import GraphError, GraphUnavailable, TokenError
from common.logs import mask_address
from common.settings import GRAPH_CONNECT_TIMEOUT_SECONDS, GRAPH_SCOPE, Settings

logger = logging.getLogger(__name__)

USER_AGENT = "mailservice-o365/0.1"
# Graph docs, "Microsoft Graph throttling guidance" and "Microsoft Graph error responses". A 401 reaches
# error_from_response only after a retry with a new token. Like a refused secret it needs an operator,
# so the job waits (retries with backoff) instead of failing.
TRANSIENT_STATUSES = frozenset({401, 429, 500, 502, 503, 504})
# Statuses after which Graph may still have sent the mail: a gateway or server error can come after
# Exchange accepted the message. 429 and 503 mean the request was not processed.
MAYBE_DELIVERED_STATUSES = frozenset({500, 502, 504})


class GraphSession(requests.Session):
    """A requests session that reads proxy and CA settings from the environment once per host.

    With ``trust_env`` on, requests 2.34 re-reads proxy variables and netrc on every request, which
    cost about 0.6 ms per sendMail here, and lets REQUESTS_CA_BUNDLE override ``Session.verify`` for
    calls without a ``verify`` argument, as MSAL makes them. So ``trust_env`` is off, the proxies
    (HTTPS_PROXY, NO_PROXY) are looked up once per host, and a configured GRAPH_CA_BUNDLE always wins.
    """

    def __init__(self, verify: bool | str) -> None:
        super().__init__()
        self.trust_env = False
        self.verify = verify
        self._proxies_by_host: dict[str, dict[str, str]] = {}

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("proxies") is None:
            kwargs["proxies"] = self._environment_proxies(url if isinstance(url, str) else url.decode())
        return super().request(method, url, *args, **kwargs)

    def _environment_proxies(self, url: str) -> dict[str, str]:
        host = urlsplit(url).netloc
        proxies = self._proxies_by_host.get(host)
        if proxies is None:
            proxies = self._proxies_by_host[host] = requests.utils.get_environ_proxies(url)
        return proxies


def tls_verify(settings: Settings) -> bool | str:
    """Return the CA bundle for Graph: GRAPH_CA_BUNDLE, else requests' own variables, else certifi."""
    if settings.graph_ca_bundle:
        return settings.graph_ca_bundle
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def build_session(settings: Settings, pool_size: int = 10) -> requests.Session:
    session = GraphSession(tls_verify(settings))
    session.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def parse_retry_after(value: str | None) -> float | None:
    """Return Retry-After in seconds; it is delta-seconds or an HTTP-date (RFC 9110, section 10.2.3)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def error_from_response(response: requests.Response) -> GraphError:
    """Build a GraphError from Graph's error body ``{"error": {"code", "message"}}``."""
    code, message = None, response.reason
    try:
        error = response.json().get("error", {})
        code, message = error.get("code"), error.get("message", message)
    except (ValueError, AttributeError):
        pass
    return GraphError(
        f"Graph returned {response.status_code} {code or ''}: {message}".replace("  ", " "),
        status_code=response.status_code,
        graph_code=code,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        transient=response.status_code in TRANSIENT_STATUSES,
        maybe_delivered=response.status_code in MAYBE_DELIVERED_STATUSES,
    )


def request_may_have_arrived(exc: requests.RequestException) -> bool:
    """Return False when requests failed before the request was sent (connect, TLS handshake)."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return False
    if isinstance(exc, requests.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return not isinstance(reason, (urllib3.exceptions.NewConnectionError,
                                       urllib3.exceptions.ConnectTimeoutError))
    return True


def odata_string(value: str) -> str:
    """Quote value as an OData string literal: in single quotes, with each quote doubled."""
    return "'" + value.replace("'", "''") + "'"


class GraphClient:
    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self._settings = settings
        self._session = session or build_session(settings, pool_size=settings.worker_concurrency + 2)
        self._timeout = (GRAPH_CONNECT_TIMEOUT_SECONDS, settings.graph_timeout_seconds)
        self._app: msal.ConfidentialClientApplication | None = None
        self._app_lock = threading.Lock()

    def _msal_app(self) -> msal.ConfidentialClientApplication:
        # MSAL fetches the OpenID configuration when the application is built, so building it lazily
        # lets a worker start while Entra ID (or the sandbox) is still unreachable.
        with self._app_lock:
            if self._app is not None:
                return self._app
            settings = self._settings
            try:
                self._app = msal.ConfidentialClientApplication(
                    settings.client_id,
                    client_credential=settings.client_secret,
                    authority=settings.authority,
                    http_client=self._session,
                    timeout=self._timeout,
                    instance_discovery=False,
                )
            except requests.RequestException as exc:
                raise GraphUnavailable(f"Entra ID at {settings.authority_host} is unreachable: {exc}") from exc
            except ValueError as exc:
                # msal raises ValueError when the OpenID configuration cannot be fetched or parsed.
                raise GraphUnavailable(f"Authority {settings.authority} is not usable: {exc}") from exc
            return self._app

    def access_token(self) -> str:
        """Return an app-only token for Graph, from MSAL's cache while it is valid."""
        app = self._msal_app()
        try:
            result: dict[str, Any] = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except requests.RequestException as exc:
            raise GraphUnavailable(f"Token request to {self._settings.authority_host} failed: {exc}") from exc

        if "access_token" in result:
            return result["access_token"]
        # A wrong or expired secret is an operator's mistake, so the jobs wait (retry) until it is fixed.
        description = (result.get("error_description") or "").strip().split("\n")[0]
        raise TokenError(
            f"Entra ID rejected the client credentials of client id {self._settings.client_id}: "
            f"{result.get('error')}: {description}",
            graph_code=result.get("error"), transient=True,
        )

    def send_mail(self, mailbox: str, message: dict[str, Any], save_to_sent_items: bool = True) -> None:
        """POST /users/{mailbox}/sendMail; return on 202, raise GraphError otherwise.

        A 401 gets one new token and one retry. A 202 is never retried, because that would send the
        mail twice.
        """
        url = f"{self._mailbox_url(mailbox)}/sendMail"
        body = {"message": message, "saveToSentItems": save_to_sent_items}

        response = self._request_with_fresh_token("POST", url, mask_address(mailbox), json=body)
        if response.status_code == 202:
            logger.debug("Graph accepted the mail for %s", mask_address(mailbox))
            return
        raise error_from_response(response)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        """Send an authorised request to ``GRAPH_BASE_URL + path`` and return its 2xx response.

        A 401 gets one new token and one retry, as in send_mail; other statuses raise GraphError.
        """
        url = f"{self._settings.graph_base_url}{path}"
        response = self._request_with_fresh_token(method, url, path.split("/")[-1], json=body)
        if response.ok:
            return response
        raise error_from_response(response)

    def upload_chunk(self, upload_url: str, chunk: bytes, content_range: str) -> requests.Response:
        """PUT one chunk to a pre-authorised upload URL and return a 2xx response.

        The URL carries its own token, so the request has no Authorization header (Graph docs:
        outlook-large-attachments). The read timeout is GRAPH_UPLOAD_TIMEOUT_SECONDS.
        """
        headers = {"Content-Range": content_range, "Content-Type": "application/octet-stream"}
        timeout = (GRAPH_CONNECT_TIMEOUT_SECONDS, self._settings.graph_upload_timeout_seconds)
        try:
            response = self._session.put(upload_url, data=chunk, headers=headers, timeout=timeout)
        except requests.Timeout as exc:
            raise GraphUnavailable(f"The upload of {content_range} timed out after {timeout[1]:.0f} s.") from exc
        except requests.RequestException as exc:
            raise GraphUnavailable(f"The upload URL is unreachable: {type(exc).__name__}.") from exc

        if response.ok:
            return response
        raise error_from_response(response)

    def find_sent_message(self, mailbox: str, internet_message_id: str) -> bool:
        """Return True if the mailbox's Sent Items contain a message with this internetMessageId.

        Needs the Mail.ReadBasic.All (or Mail.Read) application permission besides Mail.Send.
        """
        url = f"{self._mailbox_url(mailbox)}/mailFolders/sentitems/messages"
        params = {"$filter": f"internetMessageId eq {odata_string(internet_message_id)}",
                  "$select": "id", "$top": "1"}

        response = self._request_with_fresh_token("GET", url, mask_address(mailbox), params=params)
        if response.status_code != 200:
            raise error_from_response(response)
        try:
            found = response.json()["value"]
        except (ValueError, KeyError, TypeError) as exc:
            raise GraphError(f"Graph returned an unreadable body for the Sent Items query: {exc}",
                             status_code=response.status_code, transient=True) from exc
        return bool(found)

    def _mailbox_url(self, mailbox: str) -> str:
        return f"{self._settings.graph_base_url}{mailbox_path(mailbox)}"

    def _request_with_fresh_token(self, method: str, url: str, target: str,
                                  **kwargs: Any) -> requests.Response:
        """Send the request; on 401 get a new token and send it once more (Graph error responses).

        target names what the request is about in the log line; it must not be an unmasked address.
        """
        response = self._request(method, url, **kwargs)
        if response.status_code != 401:
            return response

        logger.warning("Graph rejected the token for %s %s (401); retrying once with a new token",
                       method, target)
        self._msal_app().remove_tokens_for_client()
        return self._request(method, url, **kwargs)

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        token = self.access_token()
        try:
            return self._session.request(method, url, timeout=self._timeout,
                                         headers={"Authorization": f"Bearer {token}"}, **kwargs)
        except requests.Timeout as exc:
            raise GraphUnavailable(f"Graph did not respond within {self._timeout[1]:.0f} s: {exc}",
                                   maybe_delivered=request_may_have_arrived(exc)) from exc
        except requests.RequestException as exc:
            raise GraphUnavailable(f"Graph at {self._settings.graph_base_url} is unreachable: {exc}",
                                   maybe_delivered=request_may_have_arrived(exc)) from exc


def mailbox_path(mailbox: str) -> str:
    """Return ``/users/{mailbox}`` with the address quoted for a URL path."""
    return f"/users/{quote(mailbox, safe='@')}"
