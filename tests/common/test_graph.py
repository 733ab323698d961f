"""The Graph client (MSAL + requests, unmodified) against the sandbox over HTTPS."""

import dataclasses

import pytest
import requests

from common.errors import GraphError, GraphUnavailable, TokenError
from common.graph import GraphClient, odata_string, parse_retry_after
from common.settings import Settings

pytestmark = pytest.mark.integration

MESSAGE = {"subject": "s", "body": {"contentType": "Text", "content": "b"},
           "toRecipients": [{"emailAddress": {"address": "to@example.com"}}]}


@pytest.fixture
def settings(service_env):
    return Settings.from_env(service_env)


@pytest.fixture
def mailbox():
    import uuid

    return f"graph-{uuid.uuid4().hex[:8]}@example.com"


def token_requests(sandbox):
    return sandbox.get("/_sandbox/stats")["token_requests"]


def test_send_mail_is_captured(settings, sandbox, mailbox):
    GraphClient(settings).send_mail(mailbox, MESSAGE)
    assert sandbox.messages(mailbox)[0]["message"]["subject"] == "s"


def test_token_is_reused_across_sends(settings, sandbox, mailbox):
    client = GraphClient(settings)
    client.send_mail(mailbox, MESSAGE)
    before = token_requests(sandbox)
    client.send_mail(mailbox, MESSAGE)
    assert token_requests(sandbox) == before


def test_wrong_secret_raises_token_error(settings, mailbox):
    client = GraphClient(dataclasses.replace(settings, client_secret="wrong"))
    with pytest.raises(TokenError) as info:
        client.send_mail(mailbox, MESSAGE)
    assert "7000215" in str(info.value)


def test_wrong_secret_is_not_logged(settings, mailbox, caplog):
    client = GraphClient(dataclasses.replace(settings, client_secret="very-secret-value"))
    with caplog.at_level("DEBUG"), pytest.raises(TokenError):
        client.send_mail(mailbox, MESSAGE)
    assert "very-secret-value" not in caplog.text


def test_401_gets_a_new_token_and_one_retry(settings, sandbox, mailbox):
    client = GraphClient(settings)
    sandbox.add_fault(status=401, count=1, mailbox=mailbox)
    try:
        client.send_mail(mailbox, MESSAGE)
    finally:
        sandbox.clear_faults()
    assert len(sandbox.messages(mailbox)) == 1


def test_throttling_raises_transient_error_with_retry_after(settings, sandbox, mailbox):
    sandbox.add_fault(status=429, retry_after=3, count=1, mailbox=mailbox)
    try:
        with pytest.raises(GraphError) as info:
            GraphClient(settings).send_mail(mailbox, MESSAGE)
    finally:
        sandbox.clear_faults()
    assert (info.value.transient, info.value.retry_after, info.value.graph_code) == (True, 3, "ApplicationThrottled")


def test_bad_request_is_permanent(settings, mailbox):
    with pytest.raises(GraphError) as info:
        GraphClient(settings).send_mail(mailbox, {**MESSAGE, "internetMessageHeaders": [
            {"name": "Reply-To-Custom", "value": "x"}]})
    assert (info.value.status_code, info.value.transient) == (400, False)


def test_untrusted_certificate_is_refused(settings, mailbox):
    client = GraphClient(dataclasses.replace(settings, graph_ca_bundle=""))
    with pytest.raises(GraphError):
        client.send_mail(mailbox, MESSAGE)


def test_unreachable_graph_is_transient(settings, mailbox):
    from tests.conftest import free_port

    closed = f"https://127.0.0.1:{free_port()}"
    client = GraphClient(dataclasses.replace(settings, authority_host=closed))
    with pytest.raises(GraphError) as info:
        client.send_mail(mailbox, MESSAGE)
    assert info.value.transient is True


def test_retry_after_seconds():
    assert parse_retry_after("12") == 12


def test_retry_after_http_date_in_past_is_zero():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0


def test_retry_after_garbage_is_none():
    assert parse_retry_after("soon") is None


def test_configured_ca_wins_over_requests_ca_bundle(settings, sandbox, mailbox, monkeypatch):
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    GraphClient(settings).send_mail(mailbox, MESSAGE)
    assert len(sandbox.messages(mailbox)) == 1


def test_proxy_variables_are_honoured(settings, mailbox, monkeypatch):
    from tests.conftest import free_port

    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(GraphError) as info:
        GraphClient(settings).send_mail(mailbox, MESSAGE)
    assert "proxy" in str(info.value).lower()
def send_with_fault(settings, sandbox, mailbox, **fault):
    sandbox.add_fault(mailbox=mailbox, **{"count": 1, **fault})
    try:
        with pytest.raises(GraphError) as info:
            GraphClient(settings).send_mail(mailbox, MESSAGE)
    finally:
        sandbox.clear_faults()
    return info.value


@pytest.mark.parametrize("status, maybe_delivered", [(429, False), (503, False), (500, True), (502, True),
                                                     (504, True)])
def test_error_status_tells_whether_mail_may_be_sent(settings, sandbox, mailbox, status, maybe_delivered):
    assert send_with_fault(settings, sandbox, mailbox, status=status).maybe_delivered is maybe_delivered


def test_second_401_is_transient(settings, sandbox, mailbox):
    error = send_with_fault(settings, sandbox, mailbox, status=401, count=2)

    assert (error.status_code, error.transient) == (401, True)


def test_read_timeout_may_have_sent_the_mail(settings, sandbox, mailbox):
    # The sandbox stores the mail after the latency, when the client has given up.
    error = send_with_fault(dataclasses.replace(settings, graph_timeout_seconds=0.5), sandbox, mailbox,
                            latency_ms=1500)

    assert isinstance(error, GraphUnavailable)
    assert error.maybe_delivered is True


def test_refused_connection_did_not_send(settings, mailbox):
    from tests.conftest import free_port

    # The token still comes from the sandbox; only Graph's address is closed.
    client = GraphClient(dataclasses.replace(settings, graph_base_url=f"https://127.0.0.1:{free_port()}/v1.0"))

    with pytest.raises(GraphUnavailable) as info:
        client.send_mail(mailbox, MESSAGE)
    assert info.value.maybe_delivered is False


def test_sent_message_is_found_by_internet_message_id(settings, sandbox, mailbox):
    client = GraphClient(settings)
    client.send_mail(mailbox, {**MESSAGE, "internetMessageId": "<found-1@example.com>"})

    assert client.find_sent_message(mailbox, "<found-1@example.com>") is True


def test_unsent_message_is_not_found(settings, mailbox):
    assert GraphClient(settings).find_sent_message(mailbox, "<never-sent@example.com>") is False


def test_odata_string_doubles_quotes():
    assert odata_string("<o'brien@example.com>") == "'<o''brien@example.com>'"
