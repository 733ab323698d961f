"""Run the Graph sandbox: ``python -m graph_sandbox [--host H] [--port P] [--data-dir D]``.

Each option falls back to its environment variable (SANDBOX_HOST, SANDBOX_PORT, SANDBOX_DATA_DIR)
and then to the default in common.settings.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

from common import settings
from graph_sandbox.config import SandboxConfig
from graph_sandbox.server import serve


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> argparse.Namespace:
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="python -m graph_sandbox",
        description="Serve Entra ID's token endpoint and Graph's mail endpoints over HTTPS on this machine.",
    )
    parser.add_argument(
        "--host",
        default=env.get(settings.ENV_SANDBOX_HOST) or settings.DEFAULT_SANDBOX_HOST,
        help="address to listen on (default: $SANDBOX_HOST or %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_env_port(env) if env.get(settings.ENV_SANDBOX_PORT) else settings.DEFAULT_SANDBOX_PORT,
        help="TCP port, or 0 for a free one (default: $SANDBOX_PORT or %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(env.get(settings.ENV_SANDBOX_DATA_DIR) or settings.DEFAULT_SANDBOX_DATA_DIR),
        help="directory for the CA and server certificate (default: $SANDBOX_DATA_DIR or %(default)s)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is out of range; use 0 to 65535.")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get(settings.ENV_LOG_LEVEL, settings.DEFAULT_LOG_LEVEL).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    args = parse_args(argv)
    try:
        config = SandboxConfig.from_env()
    except ValueError as error:
        print(f"graph_sandbox: {error}", file=sys.stderr)
        return 2

    serve(args.host, args.port, args.data_dir, config)
    return 0


def _env_port(env: Mapping[str, str]) -> int:
    raw = env[settings.ENV_SANDBOX_PORT]
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(
            f"graph_sandbox: {settings.ENV_SANDBOX_PORT}={raw!r} is not a port number. Use 0 to 65535."
        ) from None


if __name__ == "__main__":
    sys.exit(main())
