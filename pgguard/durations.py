"""Durations as people type them: ``90s``, ``10m``, ``1h30m``, ``2d``, or plain seconds."""

from __future__ import annotations

import re

from .errors import UsageError

_PART = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Seconds in ``text``; raises :class:`UsageError` for anything else."""
    s = text.strip()
    if s.isdigit():
        return int(s)
    pos = 0
    total = 0
    for m in _PART.finditer(s):
        if m.start() != pos or s[pos : m.start()].strip():
            break
        total += int(m.group(1)) * _UNITS[m.group(2).lower()]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise UsageError(f"cannot read duration {text!r}: use e.g. 90s, 10m, 1h30m or 2d")
    return total
