"""`pgguard check` on 1,000 migration files: its time, and side by side with squawk.

Writes a deterministic project of N hand-written-style migration files (create tables with
rows, add/drop columns, drops, TRUNCATE … CASCADE, renames, scratch tables made and dropped in
one transaction, temporary tables), then times:

- ``pgguard.check.check([dir])`` in this process (median of ``--runs``), and the whole CLI
  ``pgguard check DIR --json`` (Python start included);
- ``squawk --reporter json`` on the same files (``pip install squawk-cli``; skipped if absent).

and prints what each flags: squawk's ``ban-drop-table``, ``ban-drop-column``,
``ban-truncate-cascade`` next to check's ``drop_table``, ``drop_column``, ``truncate``, with the
statements only one of them flags (squawk flags patterns; check predicts this server's guard:
a scratch table dropped in its own transaction is no refusal, a plain ``TRUNCATE`` is one).

    python bench/bench_check.py                 # 1,000 files
    python bench/bench_check.py --files 5000 --runs 3 --keep DIR
    python bench/bench_check.py --dir tests/data/check     # existing files instead
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

try:
    import pgguard  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgguard.check import check

SQUAWK_RULES = {
    "ban-drop-table": "drop_table",
    "ban-drop-column": "drop_column",
    "ban-truncate-cascade": "truncate",
}


def write_corpus(root: Path, files: int, seed: int = 8) -> None:
    """N migration files, V1__….sql … VN__….sql, each a few statements."""
    rnd = random.Random(seed)
    tables: list[str] = []
    columns: dict[str, list[str]] = {}
    for i in range(1, files + 1):
        lines = [f"-- migration {i}"]
        roll = rnd.random()
        if roll < 0.55 or len(tables) < 5:
            t = f"t{i}"
            lines += [
                f"CREATE TABLE {t} (id bigserial PRIMARY KEY, tenant_id bigint NOT NULL,",
                "    name text, note text, created_at timestamptz DEFAULT now());",
                f"CREATE INDEX {t}_tenant ON {t} (tenant_id);",
                f"INSERT INTO {t} (tenant_id, name) VALUES (1, 'a'), (2, 'b');",
            ]
            tables.append(t)
            columns[t] = ["name", "note"]
        elif roll < 0.70:
            t = rnd.choice(tables)
            c = f"extra_{i}"
            lines += [f"ALTER TABLE {t} ADD COLUMN {c} text;", f"UPDATE {t} SET {c} = name;"]
            columns[t].append(c)
        elif roll < 0.78 and any(columns.values()):
            t = rnd.choice([x for x in tables if columns[x]])
            c = columns[t].pop(rnd.randrange(len(columns[t])))
            lines.append(f"ALTER TABLE {t} DROP COLUMN {c};")
        elif roll < 0.83:
            t = tables.pop(rnd.randrange(len(tables)))
            lines.append(f"DROP TABLE {t};")
        elif roll < 0.87:
            lines += [
                "BEGIN;",
                f"CREATE TABLE scratch_{i} (line text);",
                f"INSERT INTO scratch_{i} VALUES ('x');",
                f"DROP TABLE scratch_{i};",
                "COMMIT;",
            ]
        elif roll < 0.90:
            t = rnd.choice(tables)
            lines.append(f"TRUNCATE {t} CASCADE;")
        elif roll < 0.93:
            t = rnd.choice(tables)
            lines.append(f"TRUNCATE {t};")
        elif roll < 0.96:
            lines += [
                f"CREATE TEMP TABLE report_{i} AS SELECT 1 AS n;",
                f"DROP TABLE report_{i};",
            ]
        else:
            t = tables.pop(rnd.randrange(len(tables)))
            new = f"{t}_v2"
            lines.append(f"ALTER TABLE {t} RENAME TO {new};")
            tables.append(new)
            columns[new] = columns.pop(t)
        (root / f"V{i}__step.sql").write_text("\n".join(lines) + "\n", encoding="utf-8")


def time_check(root: Path, runs: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of check() (CPU time is what a loaded machine hides)."""
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        check([root])
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def time_cli(args: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall-clock and CPU (user + system, of the child) seconds of one command."""
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return time.perf_counter() - t0, cpu, proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="write the corpus here and keep it")
    ap.add_argument("--dir", type=Path, help="use these .sql files instead of generating any")
    ns = ap.parse_args()
    root = ns.dir or ns.keep or Path(tempfile.mkdtemp(prefix="pgguard-check-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        if ns.dir is None:
            write_corpus(root, ns.files)
        paths = sorted(root.glob("*.sql"))
        wall, cpu = time_check(root, ns.runs)
        cli_s, cli_cpu, proc = time_cli(
            [sys.executable, "-m", "pgguard", "check", str(root), "--json"]
        )
        data = json.loads(proc.stdout)
        print(f"corpus: {len(paths)} files, {data['statements']} statements")
        print(
            f"pgguard check, in process: {wall:.2f} s wall, {cpu:.2f} s CPU (median of {ns.runs})"
        )
        print(
            f"pgguard check, CLI with Python start: {cli_s:.2f} s wall, {cli_cpu:.2f} s CPU "
            f"(exit {proc.returncode})"
        )
        ours = {(Path(r["file"]).name, r["line"], r["op"]) for r in data["refusals"]}
        squawk = shutil.which("squawk")
        theirs: set[tuple[str, int, str]] = set()
        if squawk is None:
            print("squawk: not installed (pip install squawk-cli)")
        else:
            sq_s, sq_cpu, sq = time_cli([squawk, "--reporter", "json", *map(str, paths)])
            found = json.loads(sq.stdout or "[]")
            for v in found:
                op = SQUAWK_RULES.get(v["rule_name"])
                if op:
                    theirs.add((Path(v["file"]).name, v["line"] + 1, op))
            print(
                f"squawk: {sq_s:.2f} s wall, {sq_cpu:.2f} s CPU (all rules, {len(found)} findings)"
            )
        print()
        print(
            f"{'op':<12} {'check':>6} {'squawk':>7} {'both':>5} {'only check':>11} "
            f"{'only squawk':>12}"
        )
        for op in ("drop_table", "drop_column", "truncate"):
            a = {x for x in ours if x[2] == op}
            b = {x for x in theirs if x[2] == op}
            print(
                f"{op:<12} {len(a):>6} {len(b):>7} {len(a & b):>5} {len(a - b):>11} "
                f"{len(b - a):>12}"
            )
        counts = Counter(r["op"] for r in data["refusals"])
        print(
            f"\ncheck refusals by op: {dict(counts)}; allow line: "
            f"{len(data['allow'] or '')} characters"
        )
    finally:
        if ns.keep is None and ns.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
