"""Write the results: ``RESULTS.md`` (a table per server version) and a JSON file."""

from __future__ import annotations

import json
import os
import platform
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .lab import Row


def machine() -> dict[str, Any]:
    """What the numbers were measured on (no host names, no paths)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _fmt(xs: list[float], unit: str) -> str:
    if not xs:
        return "—"
    med = statistics.median(xs)
    if unit == "tps":
        return f"{med:,.0f} ({min(xs):,.0f}–{max(xs):,.0f})"
    return f"{med:.3f} ({min(xs):.3f}–{max(xs):.3f})"


def _verdict(row: Row) -> str:
    met = row.met
    return "—" if met is None else ("met" if met else "**missed**")


def table(rows: list[Row]) -> list[str]:
    """Markdown table lines for ``rows`` (one server version)."""
    lines = [
        "| case | unguarded, median (min–max) | guarded, median (min–max) | ratio"
        " | server CPU ratio | goal | |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        unit = " tps" if r.unit == "tps" else " s"
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "—"
        label = r.label + (
            f" ({r.a_name} vs {r.b_name})" if r.a_name not in ("", "unguarded") else ""
        )
        note = f"<br>{r.note}" if r.note else ""
        a = _fmt(r.a, r.unit) + (unit if r.a else "")
        b = _fmt(r.b, r.unit) + (unit if r.b else "")
        cpu = f"{r.cpu_ratio:.2f}×" if r.cpu_ratio is not None else "—"
        lines.append(f"| {label}{note} | {a} | {b} | {ratio} | {cpu} | {r.goal} | {_verdict(r)} |")
    return lines


def write(
    out_dir: Path,
    stem: str,
    results: dict[str, list[Row]],
    meta: dict[str, Any],
) -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.json`` into ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{stem}.md"
    js = out_dir / f"{stem}.json"
    m = meta["machine"]
    lines = [
        "# pgguard bench results",
        "",
        f"Measured {meta['finished_at']} by `{meta['command']}` "
        f"({meta['repeat']} interleaved runs per side; ratio = guarded / unguarded of the "
        "medians, for pgbench guarded tps / unguarded tps; server CPU ratio = the same for the "
        "CPU time of the session's server process, which other load on the machine does not "
        "inflate; goals are judged on the wall-clock ratio).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
        f"Python {m['python']}; load average at start {m['load_average_at_start']} "
        "(a shared machine: ratios are what matters, both sides share the noise).",
        "",
    ]
    for version, rows in results.items():
        lines += [f"## PostgreSQL {version}", "", *table(rows), ""]
    md.write_text("\n".join(lines))
    data = {
        **meta,
        "results": {v: [r.to_json() for r in rows] for v, rows in results.items()},
    }
    js.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return md, js


def now() -> str:
    """UTC time, minute precision."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
