"""`pgguard doctor`'s checks of row-loss limits (`pgguard protect-rows`, sql/075).

A limit whose trigger no longer fires in every session (disabled, or enabled in ORIGIN or
REPLICA mode only) or whose trigger is gone while `protect-rows` recorded it lets a mass DELETE or
UPDATE through: both are high-severity findings. The limits themselves are listed in the
report (``DoctorReport.row_limits``), not as findings.
"""

from __future__ import annotations

from collections.abc import Iterator

from .doctor import Context, Finding, check
from .rowlimits import OPS, TRIGGERS, missing_row_limits, row_limits_if_installed

_TRIGGER_OF = {op: TRIGGERS[event] for event, op in OPS.items()}


@check
def row_limit_triggers(ctx: Context) -> Iterator[Finding]:
    """Row-loss limits that no longer hold: a trigger disabled or dropped."""
    for lim in row_limits_if_installed(ctx.conn):
        if lim.enabled != "always":
            yield Finding(
                "row_limits.disabled",
                "high",
                f"the row-loss limit ({lim.op}) on {lim.table} is {lim.enabled}, not enabled"
                f" always: {'no' if lim.enabled == 'disabled' else 'not every'} session is"
                " limited",
                f"ALTER TABLE {lim.table} ENABLE ALWAYS TRIGGER {_TRIGGER_OF[lim.op]}"
                " (or run pgguard protect-rows again)",
            )
    for table, op in missing_row_limits(ctx.conn):
        yield Finding(
            "row_limits.missing",
            "high",
            f"the row-loss limit ({op}) on {table} is missing: its trigger was dropped",
            f"pgguard protect-rows {table} --op {op} puts it back",
        )
