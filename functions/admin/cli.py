"""Sender management on the command line, with the commands and flags of the old Go tool.

    python -m functions.admin init
    python -m functions.admin add -tag rechnungssystem -email rechnungen@example.com
    python -m functions.admin list
    python -m functions.admin delete -tag rechnungssystem

Output is German when LC_ALL, LC_MESSAGES or LANG starts with "de", English otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from marshmallow import ValidationError, validate

from common.db import Database, migrate
from common.errors import InvalidArgument, ServiceError
from common.i18n import language_from_locale, translate
from common.logs import configure_logging
from common.senders import SenderStore
from common.settings import SERVICE_ADMIN, get_settings
from common.tracing import configure_tracing, operation_span

APP_TAG_PATTERN = re.compile(r"^[a-z0-9_-]{2,50}$")
COMMAND_SPAN_NAME = "admin.command"


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    language = language_from_locale()
    settings = get_settings()
    configure_tracing(SERVICE_ADMIN)
    configure_logging("WARNING")
    db = Database(settings.db_dsn)

    try:
        with operation_span(COMMAND_SPAN_NAME, args.command):
            message = run_command(args, db, language)
    except ServiceError as exc:
        print(translate("cli_error", language, message=exc.localized(language)), file=sys.stderr)
        return 1
    finally:
        db.close()
    print(message)
    return 0


def run_command(args: argparse.Namespace, db: Database, language: str) -> str:
    if args.command == "init":
        return translate("cli_schema_applied", language, version=migrate(db))

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
