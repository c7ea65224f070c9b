"""Benchmark ``syncd mirror import``: rows per second and peak memory of the real CLI.

    uv run python -m tests.benchmarks.import_bench [--rows N] [--keep]

Generates a CSV of N contacts (default 1,000,000) in a temporary directory, creates a SQLite
database with ``syncd db upgrade``, then runs ``python -m syncd mirror import`` in a child
process twice: a first import (every row inserted) and a re-import of the same file (every
row unchanged). Peak RSS is the child's own high-water mark, from ``os.wait4``. The target
is under 300 MB whatever N is: the import streams.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.sync.import_formats import CSV_COLUMNS

TARGET_MB = 300
FIRST = ["Ann", "José", "Zoë", "Bjørn", "Li", "Mary", "Olumide", "Siobhán", "Renée", "Wei"]
LAST = ["Smith", "Müller", "Núñez", "O'Brien", "Nakamura", "Patel", "Dvořák", "Okafor"]
AREAS = ["202", "212", "312", "415", "617"]


@dataclass
class Run:
    label: str
    seconds: float
    peak_mb: float
    exit_code: int
    output: str


def generate(path: Path, rows: int) -> None:
    """A CSV of ``rows`` valid contacts with the usual phone and email mess, streamed out."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for n in range(rows):
            first, last = FIRST[n % len(FIRST)], LAST[(n // 7) % len(LAST)]
            area, line = AREAS[n % len(AREAS)], f"01{n % 100:02d}"
            work = (f"({area}) 555-{line}", f"{area}.555.{line}", f"+1 {area} 555 {line}")[n % 3]
            mobile = f"+44 20 7946 0{n % 1000:03d}" if n % 4 == 0 else ""
            org = (f"ORG-{n % 500:03d}", f"Company {n % 500}") if n % 2 else ("", "")
            writer.writerow(
                [f"B{n:09d}", first, last, f" User{n}@Example.COM ", work, mobile, "", "", *org]
            )


def run_child(label: str, args: list[str]) -> Run:
    """Run ``python -m syncd ARGS`` and measure its wall time and its own peak RSS."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output = proc.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    return Run(
        label=label,
        seconds=time.monotonic() - started,
        peak_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        exit_code=proc.returncode,
        output=output,
    )


def measure(
    rows: int, *, keep: bool = False, echo: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Generate, import twice, and return the figures; ``echo`` gets each report line."""
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if echo is not None:
            echo(line)

    work = Path(tempfile.mkdtemp(prefix="syncd-import-bench-"))
    csv_path = work / "crm.csv"
    config = work / "syncd.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{work / "syncd.db"}"\n'
        '[genesys]\nclient_id = "bench"\nclient_secret = "bench-secret"\n'
        '[logging]\nlevel = "warning"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    result: dict[str, Any] = {"rows": rows, "runs": [], "failed": True}
    try:
        started = time.monotonic()
        generate(csv_path, rows)
        generated = time.monotonic() - started
        size_mb = csv_path.stat().st_size / 1e6
        result["csv_mb"] = round(size_mb, 1)
        say(f"generated {rows:,} rows ({size_mb:,.1f} MB) in {generated:.1f}s: {csv_path}")

        setup = run_child("db upgrade", ["--config", str(config), "db", "upgrade"])
        if setup.exit_code != 0:
            say(setup.output)
            return result
        base = ["--config", str(config), "mirror", "import", str(csv_path)]
        runs = [run_child("first import (inserts)", base), run_child("re-import (unchanged)", base)]
        failed = False
        for run in runs:
            rate = rows / run.seconds if run.seconds else 0.0
            ok = run.peak_mb < TARGET_MB
            failed |= run.exit_code != 0 or not ok
            say(
                f"{run.label:<24} exit {run.exit_code}  {run.seconds:8.1f}s  {rate:10,.0f} rows/s  "
                f"peak RSS {run.peak_mb:6.1f} MB ({'under' if ok else 'OVER'} {TARGET_MB} MB)"
            )
            if run.exit_code != 0:
                say(run.output[-2000:])
            result["runs"].append(
                {
                    "label": run.label,
                    "exit_code": run.exit_code,
                    "seconds": round(run.seconds, 1),
                    "rows_per_s": round(rate),
                    "peak_rss_mb": round(run.peak_mb, 1),
                }
            )
        db_mb = (work / "syncd.db").stat().st_size / 1e6
        result["db_mb"] = round(db_mb, 1)
        say(f"database size {db_mb:,.1f} MB")
        result["failed"] = failed
    finally:
        if keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        result["lines"] = lines
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    options = parser.parse_args(argv)
    result = measure(options.rows, keep=options.keep, echo=print)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
