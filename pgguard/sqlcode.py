"""The server-side code this package ships, read from ``sql/`` with pglast (never by regex):
what ``pgguard doctor`` compares with the functions the database holds."""

from __future__ import annotations

import functools

from . import resources


@functools.lru_cache(maxsize=2)
def shipped_functions(mode: str = "event-triggers") -> dict[str, str]:
    """``schema.name`` -> function body (``prosrc``) for every function the files of ``mode``
    (``event-triggers`` or ``privileges``) create."""
    from pglast import ast, parse_sql

    from . import privmode

    files = resources.sql_files() if mode == privmode.MODE_EVENT_TRIGGERS else privmode.sql_files()
    bodies: dict[str, str] = {}
    for path in files:
        for raw in parse_sql(path.read_text()):
            stmt = raw.stmt
            if not isinstance(stmt, ast.CreateFunctionStmt):
                continue
            name = ".".join(part.sval for part in stmt.funcname or ())
            for opt in stmt.options or ():
                if isinstance(opt, ast.DefElem) and opt.defname == "as":
                    arg = opt.arg
                    items = arg if isinstance(arg, tuple | list) else (arg,)
                    bodies[name] = items[0].sval
    return bodies
