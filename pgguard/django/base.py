"""``ENGINE: "pgguard.django"``: Django's PostgreSQL backend, telling pgguard's refusals plainly."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.db.backends.postgresql import base as pg_base
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from ..errors import GuardRefused
from .privmode import PrivilegeSchemaEditor

logger = logging.getLogger("pgguard")

_REPORTED = "_pgguard_reported"


def report_refusal(exc: BaseException) -> GuardRefused | None:
    """Write a PGG01 refusal found in ``exc`` (or what caused it) to stderr, once per error.

    Django wraps driver errors (``django.db.utils.InternalError`` and friends, the driver's
    error as ``__cause__``), and management commands such as ``flush`` wrap those again in a
    ``CommandError`` with a generic text: the server's DETAIL and HINT are lost unless they are
    told here, where the error is first seen.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        refused = GuardRefused.from_diag(cur)
        if refused is not None:
            if not getattr(cur, _REPORTED, False):
                try:
                    setattr(cur, _REPORTED, True)
                except AttributeError:  # a C-level error object without a __dict__
                    pass
                lines = [refused.message]
                if refused.detail:
                    lines.append(f"DETAIL:  {refused.detail}")
                if refused.hint:
                    lines.append(f"HINT:  {refused.hint}")
                text = "\n".join(lines)
                logger.error("%s", text)
                print(text, file=sys.stderr, flush=True)
            return refused
        cur = cur.__cause__ or cur.__context__
    return None


class _Reporting:
    """Mixin for Django's cursor wrappers: report a refusal, then let it propagate unchanged."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        try:
            return super().execute(sql, params)  # type: ignore[misc]
        except Exception as e:
            report_refusal(e)
            raise

    def executemany(self, sql: Any, param_list: Any) -> Any:
        try:
            return super().executemany(sql, param_list)  # type: ignore[misc]
        except Exception as e:
            report_refusal(e)
            raise

    def callproc(self, procname: Any, params: Any = None, kparams: Any = None) -> Any:
        try:
            return super().callproc(procname, params, kparams)  # type: ignore[misc]
        except Exception as e:
            report_refusal(e)
            raise


class ReportingCursorWrapper(_Reporting, CursorWrapper):  # type: ignore[misc]
    pass


class ReportingCursorDebugWrapper(_Reporting, CursorDebugWrapper):  # type: ignore[misc]
    pass


class DatabaseWrapper(pg_base.DatabaseWrapper):  # type: ignore[misc]
    """Django's PostgreSQL ``DatabaseWrapper`` whose cursors tell pgguard's refusals; in
    privilege mode its schema editor sends schema changes through ``pgguard.run_ddl``."""

    SchemaEditorClass = PrivilegeSchemaEditor

    def make_cursor(self, cursor: Any) -> Any:
        return ReportingCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor: Any) -> Any:
        return ReportingCursorDebugWrapper(cursor, self)
