"""The admin CLI as an operator runs it: a subprocess against the test database."""

import os
import subprocess
import sys
import uuid

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(service_env, database):
    def run(*args, lang="en_US.UTF-8"):
        env = {**os.environ, **service_env, "LANG": lang, "LC_ALL": ""}
        return subprocess.run([sys.executable, "-m", "functions.admin", *args], env=env,
                              capture_output=True, text=True, timeout=60)
    return run


@pytest.fixture
def tag():
    value = f"cli-{uuid.uuid4().hex[:8]}"
    yield value


def test_init_reports_schema_version(cli):
    result = cli("init")
    assert result.returncode == 0
    assert "schema is up to date" in result.stdout


def test_add_then_list_shows_the_sender(cli, tag):
    assert cli("add", "-tag", tag, "-email", f"{tag}@example.com").returncode == 0
    assert f"{tag}@example.com" in cli("list").stdout
    cli("delete", "-tag", tag)


def test_double_dash_flags_work(cli, tag):
    assert cli("add", "--tag", tag, "--email", f"{tag}@example.com").returncode == 0
    assert cli("delete", "--tag", tag).returncode == 0


def test_add_output_is_german_under_german_locale(cli, tag):
    result = cli("add", "-tag", tag, "-email", "x@example.com", lang="de_DE.UTF-8")
    assert result.stdout.startswith("Absender angelegt")
    cli("delete", "-tag", tag)


def test_duplicate_add_fails_with_exit_1(cli, tag):
    cli("add", "-tag", tag, "-email", "x@example.com")
    result = cli("add", "-tag", tag, "-email", "y@example.com")
    assert result.returncode == 1
    assert "already exists" in result.stderr
    cli("delete", "-tag", tag)


def test_invalid_email_is_rejected(cli, tag):
    result = cli("add", "-tag", tag, "-email", "kein-at")
    assert result.returncode == 1
    assert "'kein-at' is not a valid e-mail address" in result.stderr


def test_invalid_tag_is_rejected(cli):
    result = cli("add", "-tag", "Großbuchstaben", "-email", "x@example.com")
    assert result.returncode == 1


def test_delete_unknown_tag_fails_in_german(cli):
    result = cli("delete", "-tag", "gibt-es-nicht", lang="de_DE.UTF-8")
    assert result.returncode == 1
    assert "Es gibt keinen Absender" in result.stderr


def test_deleted_sender_is_gone_from_list(cli, tag):
    cli("add", "-tag", tag, "-email", "x@example.com")
    cli("delete", "-tag", tag)
    assert tag not in cli("list").stdout


def test_unreachable_database_is_reported(cli, service_env):
    env_dsn = "postgresql://postgres@127.0.0.1:1/none"
    result = subprocess.run([sys.executable, "-m", "functions.admin", "list"],
                            env={**os.environ, **service_env, "DB_DSN": env_dsn, "LANG": "C"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "database is unavailable" in result.stderr
