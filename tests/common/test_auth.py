"""Credentials of the HTTP functions: header parsing, the admin token and send authorization."""

import logging
import uuid

import pytest

from common.apikeys import ApiKeyStore, generate_api_key
from common.auth import (RateLimitedClients, SendAuthorizer, bearer_credential, check_admin_token,
                         presented_api_key, require_admin_token)
from common.errors import (AdminTokenInvalid, ApiKeyInvalid, ApiKeyMissing, AppTagMismatch,
                           AuthorizationMalformed, ConfigurationError, SenderDisabled, UnknownAppTag)
from common.senders import SenderCache, SenderStore
from common.settings import Settings

TOKEN = "a-sufficiently-long-admin-token"


# --- headers -------------------------------------------------------------------------------------


def test_bearer_credential_is_returned():
    assert bearer_credential({"Authorization": "Bearer abc"}) == "abc"


def test_bearer_scheme_is_case_insensitive():
    assert bearer_credential({"Authorization": "bearer abc"}) == "abc"


def test_no_authorization_header_is_none():
    assert bearer_credential({}) is None


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "abc", ""])
def test_other_authorization_is_malformed(value):
    with pytest.raises(AuthorizationMalformed):
        bearer_credential({"Authorization": value})


def test_x_api_key_is_used_without_authorization():
    assert presented_api_key({"X-API-Key": " key "}) == "key"


def test_authorization_wins_over_x_api_key():
    assert presented_api_key({"Authorization": "Bearer first", "X-API-Key": "second"}) == "first"


def test_no_key_headers_is_none():
    assert presented_api_key({"X-API-Key": ""}) is None


# --- admin token ---------------------------------------------------------------------------------


def settings_with_token(token: str) -> Settings:
    return Settings.from_env({"ADMIN_TOKEN": token})


def test_missing_admin_token_refuses_to_start():
    with pytest.raises(ConfigurationError, match="ADMIN_TOKEN is not set"):
        require_admin_token(settings_with_token(""))


def test_short_admin_token_refuses_to_start():
    with pytest.raises(ConfigurationError, match="expected at least 16"):
        require_admin_token(settings_with_token("short"))


def test_configured_admin_token_is_returned():
    assert require_admin_token(settings_with_token(TOKEN)) == TOKEN


def test_right_admin_token_passes():
    check_admin_token({"Authorization": f"Bearer {TOKEN}"}, TOKEN)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}, {"X-API-Key": TOKEN},
                                     {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer ä"}])
def test_wrong_admin_credentials_are_rejected(headers):
    with pytest.raises(AdminTokenInvalid):
        check_admin_token(headers, TOKEN)


def test_admin_rejection_does_not_contain_token():
    with pytest.raises(AdminTokenInvalid) as caught:
        check_admin_token({"Authorization": "Bearer wrong-guess"}, TOKEN)
    assert "wrong-guess" not in str(caught.value)


# --- send authorization --------------------------------------------------------------------------


@pytest.fixture
def app(database):
    """A sender with a key: (app_tag, api_key)."""
    tag = f"auth-{uuid.uuid4().hex[:8]}"
    SenderStore(database).add(tag, f"{tag}@example.com")
    yield tag, ApiKeyStore(database).issue(tag).api_key
    database.run("DELETE FROM senders WHERE app_tag = :t", t=tag)


def authorizer(database, allow_keyless=False, interval=300.0):
    cache = SenderCache(SenderStore(database), ttl_seconds=60, keys=ApiKeyStore(database))
    return SendAuthorizer(cache, allow_keyless, interval)


@pytest.mark.integration
def test_own_key_is_authenticated(database, app):
    tag, key = app
    assert authorizer(database).authenticate({"Authorization": f"Bearer {key}"}).app_tag == tag


@pytest.mark.integration
def test_missing_key_raises_missing(database):
    with pytest.raises(ApiKeyMissing):
        authorizer(database).authenticate({})


@pytest.mark.integration
def test_missing_key_is_allowed_in_keyless_mode(database):
    assert authorizer(database, allow_keyless=True).authenticate({}) is None


@pytest.mark.integration
@pytest.mark.parametrize("key", ["nonsense", generate_api_key()[1]])
def test_malformed_or_unknown_key_raises_invalid(database, key):
    with pytest.raises(ApiKeyInvalid):
        authorizer(database).authenticate({"X-API-Key": key})


@pytest.mark.integration
def test_wrong_secret_raises_invalid(database, app):
    _, key = app
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    with pytest.raises(ApiKeyInvalid):
        authorizer(database).authenticate({"X-API-Key": forged})


@pytest.mark.integration
def test_disabled_sender_key_raises_disabled(database, app):
    tag, key = app
    SenderStore(database).update(tag, {"enabled": False})
    with pytest.raises(SenderDisabled):
        authorizer(database).authenticate({"X-API-Key": key})


@pytest.mark.integration
def test_other_app_tag_raises_mismatch(database, app):
    _, key = app
    stored = authorizer(database).authenticate({"X-API-Key": key})
    with pytest.raises(AppTagMismatch):
        authorizer(database).bind_app_tag({"app_tag": "someone-else"}, stored)


@pytest.mark.integration
@pytest.mark.parametrize("payload", [{}, {"app_tag": None}])
def test_missing_app_tag_is_the_keys(database, app, payload):
    tag, key = app
    stored = authorizer(database).authenticate({"X-API-Key": key})
    assert authorizer(database).bind_app_tag(payload, stored)["app_tag"] == tag


@pytest.mark.integration
def test_keyless_unknown_app_tag_raises_unknown(database):
    with pytest.raises(UnknownAppTag):
        authorizer(database, allow_keyless=True).admit_keyless("never-added", "127.0.0.1")


@pytest.mark.integration
def test_keyless_disabled_sender_raises_disabled(database, app):
    tag, _ = app
    SenderStore(database).update(tag, {"enabled": False})
    with pytest.raises(SenderDisabled):
        authorizer(database, allow_keyless=True).admit_keyless(tag, "127.0.0.1")


@pytest.mark.integration
def test_keyless_warning_once_per_client(database, app, caplog):
    tag, _ = app
    checker = authorizer(database, allow_keyless=True)
    with caplog.at_level(logging.WARNING, logger="common.auth"):
        for client in ("10.0.0.1", "10.0.0.1", "10.0.0.2"):
            checker.admit_keyless(tag, client)
    assert len(caplog.records) == 2


def test_rate_limit_allows_again_after_interval():
    limiter = RateLimitedClients(interval_seconds=0.0, max_clients=10)
    assert [limiter.due("a"), limiter.due("a")] == [True, True]


def test_rate_limit_table_stays_bounded():
    limiter = RateLimitedClients(interval_seconds=60.0, max_clients=2)
    for client in ("a", "b", "c"):
        limiter.due(client)
    assert len(limiter._last_warned) <= 2
