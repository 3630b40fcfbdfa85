"""Where the server-side SQL and the Alembic revisions live.

In a wheel they ship inside the package (``pgguard/_sql``, ``pgguard/_migrations``, put there by
hatchling's force-include); in a checkout they are the top-level ``sql/`` and ``migrations/``.
The installed copy wins when both exist.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_PACKAGE_DIR = Path(str(resources.files("pgguard")))


def _locate(installed: str, checkout: str) -> Path:
    inside = _PACKAGE_DIR / installed
    if inside.is_dir():
        return inside
    beside = _PACKAGE_DIR.parent / checkout
    if beside.is_dir():
        return beside
    raise FileNotFoundError(
        f"pgguard's {checkout}/ directory is missing from this installation "
        f"(looked in {inside} and {beside}); reinstall the package"
    )


def sql_dir() -> Path:
    """The directory holding ``NNN_<object>.sql`` files, applied in name order."""
    return _locate("_sql", "sql")


def migrations_dir() -> Path:
    """The Alembic script directory for pgguard's own tables."""
    return _locate("_migrations", "migrations")


def sql_files() -> list[Path]:
    """The server-side SQL files, in the order install applies them."""
    return sorted(sql_dir().glob("[0-9][0-9][0-9]_*.sql"))
