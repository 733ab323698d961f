"""The senders table through pg8000, on the test database."""

import uuid

import pytest

from common.db import Database, parse_dsn
from common.errors import DatabaseUnavailable, SenderExists, SenderNotFound
from common.senders import SenderCache, SenderStore

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
