"""Django projects: each migration's SQL in the order ``migrate`` runs them, as ``sqlmigrate``
renders it, mapped back to the migration file and the operation's line.

The rendering runs in a child process (see :mod:`pgguard.check._django_render`) with the
project's directory as working directory. An atomic migration is one transaction, as
``migrate`` runs it on PostgreSQL; ``RunPython`` is reported as "not checked: Python code".
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .model import Statement
from .sqlfiles import statements

if TYPE_CHECKING:
    from . import DjangoSource
    from .analyze import Analyzer

#: how long Django may take to load the project and render its migrations
TIMEOUT_S = 300


def settings_from_manage_py(manage: Path) -> str | None:
    """The ``DJANGO_SETTINGS_MODULE`` that manage.py sets by default, read from its syntax tree."""
    try:
        tree = ast.parse(manage.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
            and len(node.args) == 2
            and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
            and node.args[0].value == "DJANGO_SETTINGS_MODULE"  # type: ignore[attr-defined]
        ):
            return str(node.args[1].value)  # type: ignore[attr-defined]
    return None


def render(project: Path, source: DjangoSource) -> list[dict[str, Any]]:
    """Run the child process; its JSON result."""
    manage = project / "manage.py"
    settings = (
        source.settings
        or os.environ.get("DJANGO_SETTINGS_MODULE")
        or (settings_from_manage_py(manage) if manage.is_file() else None)
    )
    if not settings:
        raise UsageError(f"{project}: no settings module: pass --django-settings")
    spec = json.dumps(
        {
            "settings": settings,
            "targets": [list(t) for t in source.targets],
            "unapplied": source.unapplied,
        }
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(project.resolve()), *filter(None, [env.get("PYTHONPATH")])]
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "plan.json"
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pgguard.check._django_render", spec, str(out)],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as e:
            raise UsageError(f"{project}: Django did not render in {TIMEOUT_S} s") from e
        if proc.returncode != 0 or not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise UsageError(
                f"{project}: Django could not render the migrations:\n" + "\n".join(tail)
            )
        data: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
    return data


def _display(project: Path, rel: str) -> str:
    p = (project / rel).resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def feed_django(an: Analyzer, path: Path, source: DjangoSource) -> int:
    """Check a Django project's migrations; returns how many migration files ran."""
    project = path.parent if path.is_file() else path
    plan = render(project, source)
    files: set[str] = set()
    for mig in plan:
        file = _display(project, mig["file"])
        files.add(file)
        if mig["atomic"]:
            an.begin()
        for op in mig["ops"]:
            if op["python"]:
                an.statements += 1
                an.note(
                    Statement(file, op["line"], op["describe"]),
                    f"not checked: Python code ({op['describe']}) may write or delete rows",
                )
                an.opaque()
                continue
            for sql in op["sql"]:
                for node, src, error in statements(sql, file):
                    src = dataclasses.replace(src, line=op["line"])
                    if node is None:
                        an.statements += 1
                        an.note(src, error or "cannot parse")
                        an.opaque()  # whatever it was, it may have written rows
                    else:
                        an.feed(node, src)
        if mig["error"]:
            an.statements += 1
            an.note(Statement(file, 1, mig["name"]), f"not checked: {mig['error']}")
            an.opaque()
        if mig["atomic"]:
            an.commit()
    return len(files)
