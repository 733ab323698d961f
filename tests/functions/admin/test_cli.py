"""The admin CLI as an operator runs it: a subprocess against the test database."""

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid

import nats
import pytest
import requests

from common.job_store import JobError, JobStore
from common.jobs import Job, JobStatus
from common.settings import Settings

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


# --- API keys, enable and disable ----------------------------------------------------------------


def test_add_prints_api_key(cli, tag):
    result = cli("add", "-tag", tag, "-email", f"{tag}@example.com")
    assert "msk_" in result.stdout.splitlines()[-1]
    cli("delete", "-tag", tag)


def test_add_json_prints_usable_api_key(cli, tag, ingest):
    result = cli("add", "-tag", tag, "-email", f"{tag}@example.com", "--json")
    created = json.loads(result.stdout)
    response = requests.post(f"{ingest}/send-email", json={"recipients": ["a@example.com"], "app_tag": tag},
                             headers={"Authorization": f"Bearer {created['api_key']}"}, timeout=10)
    assert response.status_code == 202
    cli("delete", "-tag", tag)


def test_add_stores_only_the_hash(cli, tag, database):
    api_key = json.loads(cli("add", "-tag", tag, "-email", "x@example.com", "--json").stdout)["api_key"]
    [[key_hash]] = database.run("SELECT key_hash FROM api_keys WHERE app_tag = :t", t=tag)
    assert bytes(key_hash) == hashlib.sha256(api_key.encode()).digest()
    cli("delete", "-tag", tag)


def test_list_shows_state_not_key(cli, tag):
    api_key = json.loads(cli("add", "-tag", tag, "-email", "x@example.com", "--json").stdout)["api_key"]
    cli("disable", "-tag", tag)
    output = cli("list").stdout
    [row] = [line for line in output.splitlines() if line.startswith(tag)]
    assert row.split()[2] == "no"
    assert row.split()[3].startswith("20")
    assert api_key not in output
    assert "KEY CREATED" in output.splitlines()[0]
    cli("delete", "-tag", tag)


def test_disable_then_enable(cli, tag, database):
    cli("add", "-tag", tag, "-email", "x@example.com")
    assert cli("disable", "-tag", tag).stdout.startswith("Sender disabled")
    assert cli("enable", "-tag", tag).stdout.startswith("Sender enabled")
    [[enabled]] = database.run("SELECT enabled FROM senders WHERE app_tag = :t", t=tag)
    assert enabled is True
    cli("delete", "-tag", tag)


def test_disable_unknown_tag_fails(cli):
    assert cli("disable", "-tag", "gibt-es-nicht").returncode == 1


def test_keys_rotate_invalidates_old_key(cli, tag, database):
    old = json.loads(cli("add", "-tag", tag, "-email", "x@example.com", "--json").stdout)
    result = cli("keys", "rotate", "-tag", tag)
    assert "msk_" in result.stdout
    assert "no longer work" in result.stdout
    assert database.run("SELECT 1 FROM api_keys WHERE key_id = :k", k=old["key_id"]) == []
    cli("delete", "-tag", tag)


def test_keys_rotate_with_grace_names_expiry(cli, tag):
    cli("add", "-tag", tag, "-email", "x@example.com")
    result = cli("keys", "rotate", "-tag", tag, "--grace-seconds", "3600")
    assert "work until" in result.stdout
    cli("delete", "-tag", tag)


def test_keys_rotate_json_prints_new_key(cli, tag):
    old = json.loads(cli("add", "-tag", tag, "-email", "x@example.com", "--json").stdout)["api_key"]
    rotated = json.loads(cli("keys", "rotate", "-tag", tag, "--json").stdout)
    assert rotated["api_key"] != old
    cli("delete", "-tag", tag)


@pytest.mark.parametrize("grace", ["-1", "abc", "2592001", "²"])
def test_keys_rotate_rejects_invalid_grace(cli, tag, grace):
    cli("add", "-tag", tag, "-email", "x@example.com")
    result = cli("keys", "rotate", "-tag", tag, "--grace-seconds", grace)
    assert result.returncode == 1
    cli("delete", "-tag", tag)


def test_keys_rotate_unknown_tag_fails(cli):
    result = cli("keys", "rotate", "-tag", "gibt-es-nicht")
    assert result.returncode == 1
    assert "No sender" in result.stderr


def test_add_key_text_is_german_under_german_locale(cli, tag):
    result = cli("add", "-tag", tag, "-email", "x@example.com", lang="de_DE.UTF-8")
    assert "API-Schlüssel von" in result.stdout
    cli("delete", "-tag", tag)
# --- jobs dead / jobs requeue ---


def make_dead_job(database, service_env, app_tag, with_dead_letter=True):
    """Insert a dead job's row and, like the worker, copy its message to the dead-letter stream."""
    job = Job.new({"recipients": ["to@example.com"], "subject": "requeued", "body_content": "b",
                   "cc_recipients": [], "bcc_recipients": [], "attachments": [], "app_tag": app_tag})
    store = JobStore(database)
    store.insert(job, 1)
    store.finish(job.job_id, JobStatus.DEAD, JobError(503, "ServiceUnavailable", "Service down."))
    if with_dead_letter:
        asyncio.run(copy_to_dead_letters(service_env, job))
    return job


async def copy_to_dead_letters(service_env, job):
    settings = Settings.from_env(service_env)
    nc = await nats.connect(settings.nats_url)
    await nc.jetstream().publish(settings.dead_letter_subject(job.job_id), job.to_bytes())
    await nc.close()


def test_dead_jobs_are_listed_with_last_error(cli, database, service_env, worker, sender):
    job = make_dead_job(database, service_env, sender()[0])

    result = cli("jobs", "dead")

    line = next(line for line in result.stdout.splitlines() if job.job_id in line)
    assert "503 ServiceUnavailable" in line


def test_dead_jobs_header_is_german_under_german_locale(cli, database, service_env, worker, sender):
    make_dead_job(database, service_env, sender()[0])

    header = cli("jobs", "dead", lang="de_DE.UTF-8").stdout.splitlines()[0]

    assert header.split()[:3] == ["JOB_ID", "APP_TAG", "VERSUCHE"]


def test_requeued_dead_job_is_sent(cli, database, service_env, worker, sender, sandbox):
    app_tag, mailbox = sender()
    job = make_dead_job(database, service_env, app_tag)

    result = cli("jobs", "requeue", "-id", job.job_id)

    assert result.returncode == 0
    assert "requeued" in result.stdout
    assert len(sandbox.wait_for_messages(mailbox)) == 1
    assert JobStore(database).get(job.job_id).status is JobStatus.SENT


def test_requeue_of_unknown_job_fails(cli):
    result = cli("jobs", "requeue", "--id", str(uuid.uuid4()))

    assert result.returncode == 1
    assert "No job with id" in result.stderr


def test_requeue_of_invalid_id_names_it(cli):
    result = cli("jobs", "requeue", "-id", "kein-job")

    assert result.returncode == 1
    assert "'kein-job'" in result.stderr


def test_requeue_of_sent_job_is_refused(cli, database, sender):
    job = Job.new({"recipients": ["to@example.com"], "app_tag": sender()[0]})
    JobStore(database).insert(job, 1)
    JobStore(database).mark_sent(job.job_id)

    result = cli("jobs", "requeue", "-id", job.job_id)

    assert result.returncode == 1
    assert "only dead jobs" in result.stderr


def test_requeue_without_dead_letter_keeps_job_dead(cli, database, service_env, worker, sender):
    job = make_dead_job(database, service_env, sender()[0], with_dead_letter=False)

    result = cli("jobs", "requeue", "-id", job.job_id)

    assert result.returncode == 1
    assert "no longer exists" in result.stderr
    assert JobStore(database).get(job.job_id).status is JobStatus.DEAD


def test_help_is_german_under_german_locale(cli):
    assert "Datenbankschema anlegen" in cli("--help", lang="de_DE.UTF-8").stdout


def test_help_is_english_by_default(cli):
    assert "create or update the database schema" in cli("--help").stdout
