"""The senders table through pg8000, on the test database."""

import time
import uuid

import pytest

from common.apikeys import ApiKeyStore
from common.db import Database, parse_dsn
from common.errors import DatabaseUnavailable, SenderExists, SenderNotFound
from common.senders import SenderCache, SenderStore, TtlCache

pytestmark = pytest.mark.integration


@pytest.fixture
def store(database):
    return SenderStore(database)


@pytest.fixture
def tag(database):
    value = f"t-{uuid.uuid4().hex[:8]}"
    yield value
    database.run("DELETE FROM senders WHERE app_tag = :t", t=value)


def test_added_sender_is_found(store, tag):
    store.add(tag, "a@example.com")
    assert store.get(tag).mailbox == "a@example.com"


def test_duplicate_sender_raises_exists(store, tag):
    store.add(tag, "a@example.com")
    with pytest.raises(SenderExists):
        store.add(tag, "b@example.com")


def test_delete_unknown_raises_not_found(store):
    with pytest.raises(SenderNotFound):
        store.delete("never-added")


def test_cache_serves_deleted_sender_until_ttl(store, tag):
    cache = SenderCache(store, ttl_seconds=60)
    store.add(tag, "a@example.com")
    cache.get(tag)
    store.delete(tag)
    assert cache.get(tag) is not None


def test_cache_does_not_remember_misses(store, tag):
    cache = SenderCache(store, ttl_seconds=60)
    assert cache.get(tag) is None
    store.add(tag, "a@example.com")
    assert cache.get(tag) is not None


def test_added_sender_is_enabled_without_display_name(store, tag):
    sender = store.add(tag, "a@example.com")
    assert sender.enabled is True
    assert sender.display_name is None


def test_update_changes_only_given_fields(store, tag):
    store.add(tag, "a@example.com", "Alt")
    updated = store.update(tag, {"mailbox": "b@example.com"})
    assert updated.mailbox == "b@example.com"
    assert updated.display_name == "Alt"


def test_update_unknown_raises_not_found(store):
    with pytest.raises(SenderNotFound):
        store.update("never-added", {"enabled": False})


def test_update_rejects_other_fields(store, tag):
    store.add(tag, "a@example.com")
    with pytest.raises(ValueError):
        store.update(tag, {"app_tag": "renamed"})


def test_key_created_at_is_the_newest_key(store, tag, database):
    store.add(tag, "a@example.com")
    keys = ApiKeyStore(database)
    keys.issue(tag)
    newest = keys.rotate(tag, grace_seconds=60).issued
    assert store.get(tag).key_created_at == newest.created_at


def test_sender_without_key_has_no_key_time(store, tag):
    store.add(tag, "a@example.com")
    assert store.get(tag).key_created_at is None


def test_cache_serves_revoked_key_until_ttl(store, tag, database):
    keys = ApiKeyStore(database)
    cache = SenderCache(store, ttl_seconds=60, keys=keys)
    store.add(tag, "a@example.com")
    issued = keys.issue(tag)
    cache.get_key(issued.key_id)
    keys.rotate(tag, grace_seconds=0)
    assert cache.get_key(issued.key_id) is not None


def test_cache_rereads_key_after_ttl(store, tag, database):
    keys = ApiKeyStore(database)
    cache = SenderCache(store, ttl_seconds=0.2, keys=keys)
    store.add(tag, "a@example.com")
    issued = keys.issue(tag)
    cache.get_key(issued.key_id)
    keys.rotate(tag, grace_seconds=0)
    time.sleep(0.3)
    assert cache.get_key(issued.key_id) is None


def test_cache_checks_cached_key_expiry(store, tag, database):
    keys = ApiKeyStore(database)
    cache = SenderCache(store, ttl_seconds=60, keys=keys)
    store.add(tag, "a@example.com")
    issued = keys.issue(tag)
    keys.rotate(tag, grace_seconds=1)
    assert cache.get_key(issued.key_id) is not None
    time.sleep(1.1)
    assert cache.get_key(issued.key_id) is None


def test_cache_does_not_remember_unknown_keys(store, tag, database):
    keys = ApiKeyStore(database)
    cache = SenderCache(store, ttl_seconds=60, keys=keys)
    store.add(tag, "a@example.com")
    assert cache.get_key("0123456789abcdef") is None
    assert cache.get_key(keys.issue(tag).key_id) is not None


def test_ttl_cache_loads_once_within_ttl():
    loads = []
    cache = TtlCache(ttl_seconds=60)
    for _ in range(3):
        cache.get("k", lambda key: loads.append(key) or "value")
    assert loads == ["k"]


def test_unreachable_database_raises_unavailable():
    db = Database("postgresql://postgres@127.0.0.1:1/none")
    with pytest.raises(DatabaseUnavailable):
        db.run("SELECT 1")


def test_dsn_with_password_and_port():
    assert parse_dsn("postgresql://u:p%40ss@db:5433/mail") == {
        "user": "u", "password": "p@ss", "host": "db", "port": 5433, "database": "mail"}


def test_prepared_lookup_survives_reconnect(database, store, tag):
    store.add(tag, "a@example.com")
    store.get(tag)
    database.close()
    assert store.get(tag).mailbox == "a@example.com"
