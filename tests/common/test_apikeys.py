"""API key format, hashing and the api_keys table on the test database."""

import hashlib
import uuid

import pytest

from common.apikeys import (API_KEY_PATTERN, ApiKeyStore, StoredKey, generate_api_key, hash_api_key,
                            parse_key_id)
from common.errors import SenderNotFound
from common.senders import SenderStore


def test_generated_key_has_prefix_and_id():
    key_id, api_key = generate_api_key()
    assert api_key.startswith(f"msk_{key_id}_")
    assert API_KEY_PATTERN.match(api_key)


def test_generated_keys_differ():
    assert generate_api_key()[1] != generate_api_key()[1]


def test_parse_key_id_returns_id():
    key_id, api_key = generate_api_key()
    assert parse_key_id(api_key) == key_id


@pytest.mark.parametrize("text", ["", "msk_", "msk_0123456789abcdef_", "xyz_0123456789abcdef_" + "a" * 43,
                                  "msk_0123456789ABCDEF_" + "a" * 43, "msk_0123456789abcdef_" + "a" * 44,
                                  "msk_0123456789abcdef_" + "a" * 42 + "!"])
def test_parse_key_id_rejects_malformed(text):
    assert parse_key_id(text) is None


def test_hash_is_sha256_of_the_key():
    _, api_key = generate_api_key()
    assert hash_api_key(api_key) == hashlib.sha256(api_key.encode()).digest()


def test_stored_key_matches_only_its_key():
    _, api_key = generate_api_key()
    stored = StoredKey("id", "app", hash_api_key(api_key), None, True)
    assert stored.matches(api_key)
    assert not stored.matches(generate_api_key()[1])


def test_stored_key_repr_hides_hash():
    _, api_key = generate_api_key()
    assert hash_api_key(api_key).hex() not in repr(StoredKey("id", "app", hash_api_key(api_key), None, True))


# --- the table -----------------------------------------------------------------------------------

integration = pytest.mark.integration


@pytest.fixture
def keys(database):
    return ApiKeyStore(database)


@pytest.fixture
def tag(database):
    value = f"k-{uuid.uuid4().hex[:8]}"
    SenderStore(database).add(value, "k@example.com")
    yield value
    database.run("DELETE FROM senders WHERE app_tag = :t", t=value)


@integration
def test_only_the_hash_is_stored(keys, tag, database):
    issued = keys.issue(tag)
    [[key_id, key_hash]] = database.run("SELECT key_id, key_hash FROM api_keys WHERE app_tag = :t", t=tag)
    assert key_id == issued.key_id
    assert bytes(key_hash) == hashlib.sha256(issued.api_key.encode()).digest()


@integration
def test_no_column_contains_the_key(keys, tag, database):
    issued = keys.issue(tag)
    secret = issued.api_key.split("_", 2)[2]
    rows = database.run("SELECT k::text, s::text FROM api_keys k JOIN senders s USING (app_tag) "
                        "WHERE k.app_tag = :t", t=tag)
    assert all(secret not in text for row in rows for text in row)


@integration
def test_issued_key_is_found_by_id(keys, tag):
    issued = keys.issue(tag)
    assert keys.lookup(issued.key_id).app_tag == tag


@integration
def test_issue_for_unknown_sender_raises_not_found(keys):
    with pytest.raises(SenderNotFound):
        keys.issue("never-added")


@integration
def test_rotation_ends_old_key_at_once(keys, tag):
    old = keys.issue(tag)
    rotation = keys.rotate(tag, grace_seconds=0)
    assert keys.lookup(old.key_id) is None
    assert keys.lookup(rotation.issued.key_id) is not None


@integration
def test_rotation_with_grace_keeps_old_key_until_then(keys, tag):
    old = keys.issue(tag)
    rotation = keys.rotate(tag, grace_seconds=600)
    assert keys.lookup(old.key_id).expires_at == rotation.previous_expire_at


@integration
def test_second_rotation_cannot_extend_grace(keys, tag):
    old = keys.issue(tag)
    first = keys.rotate(tag, grace_seconds=60)
    keys.rotate(tag, grace_seconds=600)
    assert keys.lookup(old.key_id).expires_at == first.previous_expire_at


@integration
def test_rotation_without_previous_key_reports_none(keys, tag):
    assert keys.rotate(tag, grace_seconds=0).previous_expire_at is None


@integration
def test_rotation_of_unknown_sender_raises_not_found(keys):
    with pytest.raises(SenderNotFound):
        keys.rotate("never-added", grace_seconds=0)


@integration
def test_lookup_reports_disabled_sender(keys, tag, database):
    issued = keys.issue(tag)
    database.run("UPDATE senders SET enabled = false WHERE app_tag = :t", t=tag)
    assert keys.lookup(issued.key_id).sender_enabled is False


@integration
def test_deleting_sender_deletes_its_keys(keys, tag, database):
    issued = keys.issue(tag)
    database.run("DELETE FROM senders WHERE app_tag = :t", t=tag)
    assert keys.lookup(issued.key_id) is None
