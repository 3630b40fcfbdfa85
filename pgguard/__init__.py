"""pgguard: PostgreSQL itself refuses DROP TABLE, DROP COLUMN and TRUNCATE without a signed token.

The library API (the CLI is a thin shell over it)::

    import pgguard
    report = pgguard.install(conn)          # -> InstallReport
    health = pgguard.status(conn)           # -> Status
    token = pgguard.issue_token(key, ttl=600, ops=["drop_table"], objects=["public.t"])
    claims = pgguard.verify_token(token, keys={kid: public_key}, op="drop_table", obj="public.t")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from ._version import __version__

if TYPE_CHECKING:
    from .health import Status
    from .installer import InstallReport

__all__ = [
    "__version__",
    "errors",
    "install",
    "issue_token",
    "status",
    "uninstall",
    "verify_token",
]


def install(conn: Any, **kwargs: Any) -> InstallReport:
    """Install or upgrade pgguard in the connected database.

    See :func:`pgguard.installer.install`.
    """
    from .installer import install as _install

    return _install(conn, **kwargs)


def status(conn: Any) -> Status:
    """Health of pgguard in the connected database (see :func:`pgguard.health.status`)."""
    from .health import status as _status

    return _status(conn)


def uninstall(conn: Any, **kwargs: Any) -> Any:
    """Remove every pgguard object (see :func:`pgguard.removal.uninstall`)."""
    from .removal import uninstall as _uninstall

    return _uninstall(conn, **kwargs)


def issue_token(key: Any, **kwargs: Any) -> str:
    """Sign an override token (see :func:`pgguard.token.issue_token`)."""
    from .token import issue_token as _issue

    return _issue(key, **kwargs)


def verify_token(token: str, **kwargs: Any) -> Any:
    """Verify an override token by the server's rules (see :func:`pgguard.token.verify_token`)."""
    from .token import verify_token as _verify

    return _verify(token, **kwargs)
