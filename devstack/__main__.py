"""Command line of the local stack: `python -m devstack run | smoke | servers`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from common import settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack", description="Run the mail service locally.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start NATS, PostgreSQL, the Graph sandbox, the functions and a worker "
                                    "(make run)")
    commands.add_parser("smoke", add_help=False, help="send one mail through the running stack (make smoke)")
    servers = commands.add_parser("servers", help="start NATS and PostgreSQL unless they run, and print their "
                                                  "URLs; they keep running in the background")
    servers.add_argument("--stop", action="store_true",
                         help="stop the servers that run from .local instead (those that this command started)")
    return parser


def run_servers(stop: bool) -> int:
    from devstack import servers
    from devstack.environment import user_environment

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if stop:
        stopped = servers.stop_local_servers(settings.LOCAL_DATA_DIR)
        print("Stopped " + ", ".join(stopped) if stopped else f"No server runs from {settings.LOCAL_DATA_DIR}")
        return 0

    environment = user_environment()
    try:
        nats = servers.ensure_nats(environment[settings.ENV_NATS_URL], settings.LOCAL_DATA_DIR)
        postgres = servers.ensure_postgres(environment[settings.ENV_DB_DSN], settings.LOCAL_DATA_DIR)
    except (servers.ServerError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    print(f"NATS_URL={environment[settings.ENV_NATS_URL]}")
    print(f"DB_DSN={servers.redact_dsn(environment[settings.ENV_DB_DSN])}")
    if nats.started or postgres.started:
        print("The servers started here keep running; stop them with: python -m devstack servers --stop")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # smoke has options of its own, so it parses the rest of the command line itself.
    if argv[:1] == ["smoke"]:
        from devstack import smoke

        return smoke.main(argv[1:])

    args = build_parser().parse_args(argv)
    if args.command == "run":
        from devstack import stack

        return stack.main()
    return run_servers(args.stop)


if __name__ == "__main__":
    sys.exit(main())
