"""Imports every command module kept outside ``pgguard/cli/__init__.py`` so it registers on ``cli``.

Each module does ``from pgguard.cli import cli`` and decorates its commands with ``@cli.command()``.
"""

from __future__ import annotations

from . import (
    approvals,  # noqa: F401  (cosign, request, approve)
    check,  # noqa: F401
    deploy,  # noqa: F401  (deploy, snapshot, verify, protect-rows)
    doctor,  # noqa: F401  (ways around the guard still open)
    restore,  # noqa: F401
    run,  # noqa: F401  (privilege mode: migration scripts through the executor)
)
