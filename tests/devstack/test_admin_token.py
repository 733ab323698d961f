"""The local run's admin token: from the environment, from .local/admin-token, or newly generated."""

from __future__ import annotations

import stat
from pathlib import Path

from devstack.admin_token import TokenOrigin, ensure_admin_token


def test_environment_token_wins(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text("from-the-file-0123456789\n")

    token = ensure_admin_token({"ADMIN_TOKEN": "from-the-environment-0123"}, token_file)

    assert token.value == "from-the-environment-0123"
    assert token.origin is TokenOrigin.ENVIRONMENT


def test_stored_token_is_reused(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text("from-the-file-0123456789\n")

    token = ensure_admin_token({}, token_file)

    assert token.value == "from-the-file-0123456789"
    assert token.origin is TokenOrigin.FILE


def test_missing_token_is_generated_and_stored(tmp_path: Path) -> None:
    token_file = tmp_path / "local" / "admin-token"

    token = ensure_admin_token({}, token_file)

    assert token.origin is TokenOrigin.GENERATED
    assert len(token.value) >= 32
    assert token_file.read_text().strip() == token.value


def test_generated_token_file_is_owner_only(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    token_file.write_text("")
    token_file.chmod(0o644)

    ensure_admin_token({}, token_file)

    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_second_run_reuses_generated_token(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"

    first = ensure_admin_token({}, token_file)
    second = ensure_admin_token({}, token_file)

    assert second.value == first.value
    assert second.origin is TokenOrigin.FILE


def test_token_repr_hides_value(tmp_path: Path) -> None:
    token = ensure_admin_token({}, tmp_path / "admin-token")

    assert token.value not in repr(token)
