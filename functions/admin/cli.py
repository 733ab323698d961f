"""Sender management on the command line, with the commands and flags of the old Go tool, and dead jobs.

    python -m functions.admin init
    python -m functions.admin add -tag rechnungssystem -email rechnungen@example.com
    python -m functions.admin list
    python -m functions.admin delete -tag rechnungssystem
    python -m functions.admin jobs dead
    python -m functions.admin jobs requeue -id 0b6c4d1e-...

Output is German when LC_ALL, LC_MESSAGES or LANG starts with "de", English otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from marshmallow import ValidationError, validate

from common.db import Database, migrate
from common.dead_letters import requeue_dead_job
from common.errors import InvalidArgument, ServiceError
from common.i18n import language_from_locale, translate
from common.job_store import JobStore
from common.jobs import parse_job_id
from common.logs import configure_logging
from common.senders import SenderStore
from common.settings import Settings, get_settings

APP_TAG_PATTERN = re.compile(r"^[a-z0-9_-]{2,50}$")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m functions.admin",
                                     description="Manage the sender mailbox of each application (app_tag).")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("init", help="create or update the database schema")

    add = commands.add_parser("add", help="add a sender: the mailbox an app_tag sends from")
    add.add_argument("-tag", "--tag", required=True, help="the application's app_tag")
    add.add_argument("-email", "--email", required=True, help="the mailbox address it sends from")

    commands.add_parser("list", help="list the senders")

    delete = commands.add_parser("delete", help="delete the sender of an app_tag")
    delete.add_argument("-tag", "--tag", required=True, help="the application's app_tag")

    jobs = commands.add_parser("jobs", help="list dead jobs and requeue one")
    job_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    job_commands.add_parser("dead", help="list the dead jobs, oldest first")
    requeue = job_commands.add_parser("requeue", help="send a dead job again, with a new attempt budget")
    requeue.add_argument("-id", "--id", required=True, dest="job_id", help="the job id (a UUID)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    language = language_from_locale()
    settings = get_settings()
    configure_logging("WARNING")
    db = Database(settings.db_dsn)

    try:
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

    store = SenderStore(db)
    if args.command == "add":
        return add_sender(store, args.tag, args.email, language)
    if args.command == "delete":
        store.delete(args.tag)
        return translate("cli_sender_deleted", language, app_tag=args.tag)
    return format_senders(store, language)


def add_sender(store: SenderStore, app_tag: str, email: str, language: str) -> str:
    if not APP_TAG_PATTERN.match(app_tag):
        raise InvalidArgument(translate("cli_invalid_tag", language, app_tag=app_tag))
    try:
        validate.Email()(email)
    except ValidationError as exc:
        raise InvalidArgument(translate("cli_invalid_email", language, email=email)) from exc

    sender = store.add(app_tag, email)
    return translate("cli_sender_added", language, app_tag=sender.app_tag, mailbox=sender.mailbox)


def format_senders(store: SenderStore, language: str) -> str:
    senders = store.list()
    if not senders:
        return translate("cli_no_senders", language)

    header = translate("cli_list_header", language).split("|")
    rows = [header] + [[s.app_tag, s.mailbox, s.created_at.strftime("%Y-%m-%d %H:%M UTC")] for s in senders]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


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
    rows = [header] + [[job.job_id, job.app_tag, str(job.attempts), job.updated_at.strftime("%Y-%m-%d %H:%M UTC"),
                        str(job.error or "")] for job in jobs]
    return format_table(rows)


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
