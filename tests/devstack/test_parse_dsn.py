from __future__ import annotations

import pytest

from devstack.servers import parse_dsn, redact_dsn


def test_parse_dsn_reads_every_part() -> None:
    params = parse_dsn("postgresql://mail:secret@db.internal:6543/mailservice")

    assert params["user"] == "mail"
    assert params["password"] == "secret"
    assert params["host"] == "db.internal"
    assert params["port"] == 6543
    assert params["database"] == "mailservice"


def test_parse_dsn_fills_defaults() -> None:
    params = parse_dsn("postgresql:///")

    assert params["user"] == "postgres"
    assert params["password"] is None
    assert params["host"] == "127.0.0.1"
    assert params["port"] == 5432
    assert params["database"] == "postgres"


def test_parse_dsn_database_defaults_to_user() -> None:
    assert parse_dsn("postgresql://alice@127.0.0.1")["database"] == "alice"


def test_parse_dsn_percent_decodes() -> None:
    params = parse_dsn("postgres://m%40il:p%2Fss%3Aw%40rd@127.0.0.1/mail%20db")

    assert params["user"] == "m@il"
    assert params["password"] == "p/ss:w@rd"
    assert params["database"] == "mail db"


def test_parse_dsn_reads_ipv6_host() -> None:
    params = parse_dsn("postgresql://postgres@[::1]:5433/x")

    assert params["host"] == "::1"
    assert params["port"] == 5433


def test_parse_dsn_keeps_empty_password() -> None:
    assert parse_dsn("postgresql://postgres:@127.0.0.1/x")["password"] == ""


@pytest.mark.parametrize("dsn", [
    "mysql://root@127.0.0.1/x",
    "127.0.0.1:5432",
    "postgresql://postgres@127.0.0.1/x?sslmode=require",
    "postgresql://postgres@127.0.0.1:notaport/x",
    "postgresql://postgres@127.0.0.1:70000/x",
])
def test_parse_dsn_rejects_invalid(dsn: str) -> None:
    with pytest.raises(ValueError):
        parse_dsn(dsn)


def test_parse_dsn_error_hides_password() -> None:
    with pytest.raises(ValueError) as error:
        parse_dsn("postgresql://postgres:topsecret@127.0.0.1/x?sslmode=require")

    assert "topsecret" not in str(error.value)


def test_redact_dsn_masks_password() -> None:
    assert redact_dsn("postgresql://u:pw@h:1/d") == "postgresql://u:***@h:1/d"
