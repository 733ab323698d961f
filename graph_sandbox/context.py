"""Access to the configuration and state of the sandbox that serves the current request."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from graph_sandbox.config import SandboxConfig
from graph_sandbox.state import SandboxState

EXTENSION_KEY = "graph_sandbox"


@dataclass(frozen=True)
class SandboxContext:
    config: SandboxConfig
    state: SandboxState


def sandbox_context() -> SandboxContext:
    return current_app.extensions[EXTENSION_KEY]
