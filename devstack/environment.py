"""The environment that the local stack, its processes and the smoke test run with."""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from common import settings

DOTENV_PATH = settings.REPO_ROOT / ".env"


def user_environment(environ: Mapping[str, str] | None = None,
                     dotenv_path: Path = DOTENV_PATH) -> dict[str, str]:
    """Merge the repo's .env under the process environment, which wins, and default NATS_URL and DB_DSN."""
    from dotenv import dotenv_values

    environ = os.environ if environ is None else environ
    from_file = dotenv_values(dotenv_path) if dotenv_path.is_file() else {}

    merged = {key: value for key, value in from_file.items() if value is not None}
    merged.update(environ)
    merged.setdefault(settings.ENV_NATS_URL, settings.DEFAULT_NATS_URL)
    merged.setdefault(settings.ENV_DB_DSN, settings.DEFAULT_DB_DSN)
    return merged


def uses_sandbox(environment: Mapping[str, str]) -> bool:
    """Return True unless the user set AUTHORITY_HOST, which means they talk to real Microsoft Entra ID."""
    return settings.ENV_AUTHORITY_HOST not in environment


def child_environment(environment: Mapping[str, str], sandbox_data_dir: Path,
                      sandbox_port: int) -> dict[str, str]:
    """Return the environment of the stack's processes: the user's, the sandbox's Graph settings and defaults.

    - PATH starts with this interpreter's scripts directory (the repo's .venv/bin under `make`), so that
      `python` and `functions-framework` are the venv's.
    - WORKERS defaults to the number of CPUs because functions-framework starts one gunicorn worker
      otherwise, which leaves the other cores idle.
    - HOST defaults to 127.0.0.1 because functions-framework otherwise listens on every interface, and the
      admin API has no authentication of its own.
    """
    child = dict(environment)
    if uses_sandbox(environment):
        child.update(settings.sandbox_environment(sandbox_data_dir, sandbox_port))

    scripts_dir = sysconfig.get_path("scripts")
    child["PATH"] = os.pathsep.join(filter(None, [scripts_dir, environment.get("PATH", os.defpath)]))
    child.setdefault("WORKERS", str(os.cpu_count() or 1))
    child.setdefault("HOST", "127.0.0.1")
    child["PYTHONUNBUFFERED"] = "1"  # so that each process's lines reach the terminal as they are printed
    return child
