"""Entra ID's v2.0 endpoints that MSAL's client-credentials flow calls.

MSAL first GETs ``{authority}/v2.0/.well-known/openid-configuration`` and then POSTs the form
``grant_type=client_credentials&client_id&client_secret&scope`` to its ``token_endpoint``.
Errors carry Entra ID's AADSTS numbers.
"""

from __future__ import annotations

import hmac
import logging
import re

from flask import Blueprint, Response, g, jsonify, request

from graph_sandbox.context import sandbox_context
from graph_sandbox.errors import EntraError

logger = logging.getLogger(__name__)

identity = Blueprint("identity", __name__)

GRAPH_RESOURCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


@identity.get("/<tenant>/v2.0/.well-known/openid-configuration")
def openid_configuration(tenant: str) -> Response:
    g.operation = "openidConfiguration"
    tenant_id = _known_tenant(tenant, error="invalid_tenant")

    base = f"{request.host_url}{tenant_id}"
    return jsonify(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{request.host_url}oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "tid",
                "ver",
            ],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "msgraph_host": request.host,
        }
    )


@identity.get("/<tenant>/discovery/v2.0/keys")
def signing_keys(tenant: str) -> Response:
    # The sandbox's tokens are opaque strings, not JWTs, so there is no key to publish.
    _known_tenant(tenant, error="invalid_tenant")
    return jsonify({"keys": []})


@identity.route("/<tenant>/oauth2/v2.0/token", methods=["GET", "POST"])
def token(tenant: str) -> Response:
    g.operation = "token"
    config = sandbox_context().config
    _known_tenant(tenant, error="invalid_request")
    if request.method != "POST":
        raise EntraError(
            400,
            "invalid_request",
            900561,
            f"The endpoint only accepts POST requests. Received a {request.method} request.",
        )

    form = request.form
    _check_grant_type(form.get("grant_type"))
    client_id, client_secret = _client_credentials()
    if not client_id:
        raise _missing_parameter("client_id")
    if client_id.lower() != config.client_id.lower():
        raise EntraError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{config.tenant_id}'. "
            "This can happen if the application has not been installed by the administrator of the tenant or "
            "consented to by any user in the tenant. You may have sent your authentication request to the "
            "wrong tenant.",
        )
    _check_client_secret(client_id, client_secret)
    _check_scope(form.get("scope"), config.tenant_id)

    lifetime = config.token_lifetime_seconds
    access_token = sandbox_context().state.issue_token(config.client_id, config.tenant_id, lifetime)
    logger.debug("Issued an access token to client %s, valid for %d s", config.client_id, lifetime)
    response = jsonify(
        {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }
    )
    response.headers["Cache-Control"] = "no-store, no-cache"
    response.headers["Pragma"] = "no-cache"
    return response


def _known_tenant(tenant: str, error: str) -> str:
    config = sandbox_context().config
    if tenant.lower() == config.tenant_id.lower():
        return config.tenant_id
    if not (_GUID.match(tenant) or _DNS_NAME.match(tenant)):
        raise EntraError(
            400,
            error,
            900023,
            f"Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain.",
        )
    raise EntraError(
        400,
        error,
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into "
        "the correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
    )


def _check_grant_type(grant_type: str | None) -> None:
    if not grant_type:
        raise _missing_parameter("grant_type")
    if grant_type != "client_credentials":
        # NOTE: Entra supports other grants, but the sandbox's one app uses only client credentials.
        raise EntraError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )


def _client_credentials() -> tuple[str | None, str | None]:
    """Return client id and secret from the form (client_secret_post) or Basic auth (client_secret_basic)."""
    basic = request.authorization
    if basic is not None and basic.type == "basic":
        return basic.username, basic.password
    return request.form.get("client_id"), request.form.get("client_secret")


def _check_client_secret(client_id: str, client_secret: str | None) -> None:
    if not client_secret:
        # NOTE: the sandbox's app has only a secret, so a client assertion (certificate) gets this error too.
        raise EntraError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    if not hmac.compare_digest(client_secret.encode(), sandbox_context().config.client_secret.encode()):
        raise EntraError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
            f"value, not the client secret ID, for a secret added to app '{client_id}'.",
        )


def _check_scope(scope: str | None, tenant_id: str) -> None:
    if not scope:
        raise _missing_parameter("scope")
    scopes = scope.split()
    if len(scopes) != 1:
        raise EntraError(
            400,
            "invalid_scope",
            70011,
            f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid.",
        )
    resource, _, permission = scopes[0].rpartition("/")
    if permission != ".default":
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
            "with /.default suffixed to the resource identifier (application ID URI).",
        )
    if resource.rstrip("/").lower() not in GRAPH_RESOURCES:
        raise EntraError(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant named {tenant_id}. This can "
            "happen if the application has not been installed by the administrator of the tenant or consented "
            "to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
        )


def _missing_parameter(name: str) -> EntraError:
    return EntraError(
        400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
    )
