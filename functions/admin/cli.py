"""Sender management on the command line, with the commands and flags of the old Go tool, and dead jobs.

    python -m functions.admin init
    python -m functions.admin add -tag rechnungssystem -email rechnungen@example.com [--json]
    python -m functions.admin list
    python -m functions.admin disable -tag rechnungssystem
    python -m functions.admin enable -tag rechnungssystem
    python -m functions.admin keys rotate -tag rechnungssystem [--grace-seconds 3600] [--json]
    python -m functions.admin delete -tag rechnungssystem
    python -m functions.admin jobs dead
    python -m functions.admin jobs requeue -id 0b6c4d1e-...

``add`` and ``keys rotate`` print the new API key; it is shown only then, because only its hash is stored.

Output is German when LC_ALL, LC_MESSAGES or LANG starts with "de", English otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone

from marshmallow import ValidationError, validate

from common.db import Database, migrate
from common.dead_letters import requeue_dead_job
from common.errors import InvalidArgument, ServiceError
from common.i18n import DEFAULT_LANGUAGE, language_from_locale, translate
from common.job_store import JobStore
from common.jobs import parse_job_id
from common.logs import configure_logging
from common.sender_admin import SenderAdmin, created_json, rotation_json
from common.sender_schemas import APP_TAG_PATTERN
from common.settings import (DEFAULT_KEY_GRACE_SECONDS, MAX_KEY_GRACE_SECONDS, SERVICE_ADMIN, Settings,
                             get_settings)
from common.tracing import configure_tracing, operation_span

COMMAND_SPAN_NAME = "admin.command"


def build_parser(language: str = DEFAULT_LANGUAGE) -> argparse.ArgumentParser:
    def text(key: str, **params: object) -> str:
        return translate(f"cli_help_{key}", language, **params)

    parser = argparse.ArgumentParser(prog="python -m functions.admin", description=text("description"))
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("init", help=text("init"))

    add = commands.add_parser("add", help=text("add"))
    add.add_argument("-tag", "--tag", required=True, help=text("tag"))
    add.add_argument("-email", "--email", required=True, help=text("email"))
    add.add_argument("-name", "--name", default=None, help=text("name"))
    add.add_argument("--json", action="store_true", help=text("add_json"))

    commands.add_parser("list", help=text("list"))

    for name in ("delete", "disable", "enable"):
        command = commands.add_parser(name, help=text(name))
        command.add_argument("-tag", "--tag", required=True, help=text("tag"))

    keys = commands.add_parser("keys", help=text("keys"))
    key_commands = keys.add_subparsers(dest="key_command", required=True)
    rotate = key_commands.add_parser("rotate", help=text("rotate"))
    rotate.add_argument("-tag", "--tag", required=True, help=text("tag"))
    rotate.add_argument("--grace-seconds", default=str(DEFAULT_KEY_GRACE_SECONDS),
                        help=text("grace", max=MAX_KEY_GRACE_SECONDS))
    rotate.add_argument("--json", action="store_true", help=text("rotate_json"))

    jobs = commands.add_parser("jobs", help=text("jobs"))
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    job_commands.add_parser("dead", help=text("dead"))
    requeue = job_commands.add_parser("requeue", help=text("requeue"))
    requeue.add_argument("-id", "--id", required=True, dest="job_id", help=text("job_id"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    language = language_from_locale()
    # NOTE: argparse's own words (usage:, error:, the required-argument message) stay English.
    args = build_parser(language).parse_args(argv)
    settings = get_settings()
    configure_tracing(SERVICE_ADMIN)
    configure_logging("WARNING")
    db = Database(settings.db_dsn)

    try:
        with operation_span(COMMAND_SPAN_NAME, args.command):
            message = run_command(args, db, language, settings)
    except ServiceError as exc:
        print(translate("cli_error", language, message=exc.localized(language)), file=sys.stderr)
        return 1
    finally:
        db.close()
    print(message)
    return 0


def run_command(args: argparse.Namespace, db: Database, language: str, settings: Settings) -> str:
    if args.command == "init":
        return translate("cli_schema_applied", language, version=migrate(db))
    if args.command == "jobs":
        return run_jobs_command(args, JobStore(db), language, settings)

    admin = SenderAdmin(db)
    if args.command == "add":
        return add_sender(admin, args, language)
    if args.command == "delete":
        admin.delete(args.tag)
        return translate("cli_sender_deleted", language, app_tag=args.tag)
    if args.command in ("enable", "disable"):
        enabled = args.command == "enable"
        admin.set_enabled(args.tag, enabled)
        return translate("cli_sender_enabled" if enabled else "cli_sender_disabled", language, app_tag=args.tag)
    if args.command == "keys":
        return rotate_key(admin, args, language)
    return format_senders(admin, language)


def add_sender(admin: SenderAdmin, args: argparse.Namespace, language: str) -> str:
    if not APP_TAG_PATTERN.match(args.tag):
        raise InvalidArgument(translate("cli_invalid_tag", language, app_tag=args.tag))
    try:
        validate.Email()(args.email)
    except ValidationError as exc:
        raise InvalidArgument(translate("cli_invalid_email", language, email=args.email)) from exc

    created = admin.create(args.tag, args.email, args.name)
    if args.json:
        return json.dumps(created_json(created), ensure_ascii=False)
    sender, key = created.sender, created.key
    return "\n".join([translate("cli_sender_added", language, app_tag=sender.app_tag, mailbox=sender.mailbox),
                      translate("cli_api_key_issued", language, app_tag=sender.app_tag, api_key=key.api_key)])


def rotate_key(admin: SenderAdmin, args: argparse.Namespace, language: str) -> str:
    grace = args.grace_seconds
    if not (grace.isascii() and grace.isdigit()) or int(grace) > MAX_KEY_GRACE_SECONDS:
        raise InvalidArgument(translate("cli_invalid_grace", language, value=grace, max=MAX_KEY_GRACE_SECONDS))

    rotation = admin.rotate_key(args.tag, int(grace))
    if args.json:
        return json.dumps(rotation_json(rotation), ensure_ascii=False)
    lines = [translate("cli_api_key_issued", language, app_tag=args.tag, api_key=rotation.issued.api_key)]
    if rotation.previous_expire_at is not None and int(grace) > 0:
        expires_at = _format_time(rotation.previous_expire_at, seconds=True)
        lines.append(translate("cli_previous_keys_expire", language, app_tag=args.tag, expires_at=expires_at))
    elif rotation.previous_expire_at is not None:
        lines.append(translate("cli_previous_keys_revoked", language, app_tag=args.tag))
    return "\n".join(lines)


def format_senders(admin: SenderAdmin, language: str) -> str:
    senders = admin.list()
    if not senders:
        return translate("cli_no_senders", language)

    header = translate("cli_list_header", language).split("|")
    rows = [header]
    for sender in senders:
        enabled = translate("cli_yes" if sender.enabled else "cli_no", language)
        key_created = (_format_time(sender.key_created_at) if sender.key_created_at is not None
                       else translate("cli_no_key", language, app_tag=sender.app_tag))
        rows.append([sender.app_tag, sender.mailbox, enabled, key_created, _format_time(sender.created_at)])
    return format_table(rows)


def _format_time(moment: datetime, seconds: bool = False) -> str:
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def run_jobs_command(args: argparse.Namespace, store: JobStore, language: str, settings: Settings) -> str:
    if args.jobs_command == "dead":
        return format_dead_jobs(store, language)

    job_id = parse_job_id(args.job_id)
    requeue_dead_job(settings, store, job_id)
    return translate("cli_job_requeued", language, job_id=job_id)


def format_dead_jobs(store: JobStore, language: str) -> str:
    jobs = store.list_dead()
    if not jobs:
        return translate("cli_no_dead_jobs", language)

    header = translate("cli_dead_jobs_header", language).split("|")
    rows = [header] + [[job.job_id, job.app_tag, str(job.attempts), _format_time(job.updated_at),
                        str(job.error or "")] for job in jobs]
    return format_table(rows)


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
