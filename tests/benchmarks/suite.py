"""The benchmark suite: every figure issue 8 asks for, in one table.

    uv run python -m tests.benchmarks [--quick | --ci] [--only NAME ...] [--markdown]
                                      [--json FILE] [--verbose] [--strict] [--list]

Each benchmark runs in its own subprocess (``python -m tests.benchmarks.suite --child NAME``),
so a peak-memory figure belongs to one benchmark and a crash or a timeout costs one row, not
the table; the process group of a child is killed when it ends, whatever happened. The
benchmarks are the modules next to this one (``client_bench``, ``calls_bench``,
``engine_bench``, ``import_bench``, ``ledger_bench``, ``daemon_bench``, ``bulk_bench``); this
file only picks their sizes and turns their figures into rows.

Sizes: *full* is the issues' sizes (10 to 30 minutes), ``--quick`` a few minutes, ``--ci`` a
smoke run (well under 3 minutes on 2 cores) whose verdicts are informational: it exists so the
suite cannot rot, and ``tests/benchmarks/test_suite_ci.py`` runs it (marker ``benchmark``, a
step of its own in ``.ci/run``).

Every row: name, figure, target, verdict (``meets`` / ``misses``; ``reported`` when no target
was set), and the size it was measured at. Under the table: the machine (CPU count, date), the
load average before and after each benchmark and a CPU calibration loop timed at the start
and the end of the suite, because the machine may be shared: prefer ratios to absolute times.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SIZES = ("full", "quick", "ci")
MEETS, MISSES, REPORTED, ERROR = "meets", "misses", "reported", "error"
NO_TARGET = "none set"
POSTGRES_ENV = "SYNCD_TEST_POSTGRES_URL"


@dataclass
class Row:
    name: str
    figure: str
    target: str
    verdict: str
    size: str
    bench: str = ""


Result = tuple[list[Row], dict[str, Any]]


def _verdict(ok: bool) -> str:
    return MEETS if ok else MISSES


def _pick(size: str, full: Any, quick: Any, ci: Any) -> Any:
    return {"full": full, "quick": quick, "ci": ci}[size]


# -- the benchmarks (each runs in a child process) ------------------------------------------


def _rate(size: str, rpm: int) -> Result:
    import anyio

    from tests.benchmarks import client_bench

    if rpm == 600:
        scale = replace(client_bench.FULL, a_creates=_pick(size, 300, 300, 30))
        name = "Rate-limit utilization, 600/min, 100 ms latency"
    else:
        creates = _pick(size, 3000, 600, 300)
        scale = replace(client_bench.FULL, a_rpm=rpm, a_creates=creates, in_flight=16)
        name = f"Rate-limit utilization, {rpm:,}/min (scaled x{rpm // 600}), 100 ms latency"
    a = anyio.run(client_bench.scenario_a, scale)
    ok = (
        a["utilization_pct"] >= 95
        and a["429s"] == 0
        and a["duplicates"] == 0
        and a["created"] == scale.a_creates
    )
    figure = (
        f"{a['utilization_pct']}% ({a['elapsed_s']} s for a {a['budget_s']} s budget), "
        f"{a['429s']} 429s"
    )
    size_text = f"{scale.a_creates:,} creates, max_in_flight {scale.in_flight}"
    return [Row(name, figure, "≥ 95%, 0 429s", _verdict(ok), size_text)], a


def bench_rate(size: str) -> Result:
    return _rate(size, 600)


def bench_rate_scaled(size: str) -> Result:
    return _rate(size, 6000)


def bench_429(size: str) -> Result:
    import anyio

    from tests.benchmarks import client_bench

    full = client_bench.FULL
    scale = _pick(
        size,
        full,
        replace(full, b_seconds=75, run_b2=False),
        replace(full, b_client_rpm=6000, b_server_rpm=3000, b_seconds=4, b_warmup=1, run_b2=False),
    )
    results = anyio.run(client_bench.run, scale, {"b", "b2"})
    rows = []
    for b in results:
        headers = b["scenario"].startswith("b:")
        name = f"429 share, client {scale.b_client_rpm:,}/min vs server {scale.b_server_rpm:,}/min"
        if not headers:
            name += " (X-Rate-Limit-* ignored: 429 + Retry-After only)"
        share, rate = b["429_share_after_warmup_pct"], b["throughput_pct_of_limit"]
        ok = share < 2 and rate > 90 and b["errors"] == 0 and b["duplicates"] == 0
        size_text = f"{scale.b_seconds:.0f} s, first {scale.b_warmup:.0f} s excluded"
        if size == "ci":
            size_text += " (the server's 60 s window never fills: smoke only)"
        rows.append(
            Row(
                name,
                f"{share}% 429s, throughput {rate}% of the limit ({b['429s']} 429s in all)",
                "< 2% 429s, > 90% of the limit",
                _verdict(ok),
                size_text,
            )
        )
    return rows, {"scenarios": results}


def _calls_text(calls: dict[str, int]) -> str:
    return " + ".join(f"{n:,} {method}" for method, n in calls.items() if n) or "0"


def bench_calls(size: str) -> Result:
    from tests.benchmarks import calls_bench

    scale = _pick(size, calls_bench.FULL, calls_bench.QUICK, calls_bench.TINY)
    result = calls_bench.measure(scale)
    rows = []
    for s in result["steps"]:
        extra = s["total"] - s["minimum_total"]
        figure = f"{_calls_text(s['calls'])} (minimum {_calls_text(s['minimum'])})"
        if extra:
            figure += f": {extra:+,}"
        ok = s["at_minimum"] and s["non_2xx"] == 0
        if s["step"] == "create":
            ok = ok and result["duplicates"] == 0
        rows.append(Row(f"API calls per change: {s['step']}", figure, "= minimum", _verdict(ok),
                        s["change"]))  # fmt: skip
    return rows, result


def _engine_scale(size: str) -> Any:
    from tests.benchmarks import engine_bench

    ci = engine_bench.Scale(small=1_000, big=20_000, changes=50, repeats=2, full_contacts=2_000)
    return _pick(size, engine_bench.FULL, engine_bench.QUICK, ci)


def bench_incremental(size: str) -> Result:
    from tests.benchmarks import engine_bench

    scale = _engine_scale(size)
    inc = engine_bench.bench_incremental(scale)
    small = statistics.median(inc["small"]["runs_s"])
    big = statistics.median(inc["big"]["runs_s"])
    row = Row(
        "Incremental run cost vs mirror size (big / small)",
        f"ratio {inc['ratio']} ({big:.2f} s vs {small:.2f} s)",
        "≤ 1.5",
        _verdict(inc["ratio"] <= 1.5),
        f"{scale.changes:,} PATCHes; {scale.small:,} vs {scale.big:,} rows; "
        f"median of {scale.repeats}",
    )
    return [row], inc


def bench_full(size: str) -> Result:
    from tests.benchmarks import engine_bench

    scale = _engine_scale(size)
    full = engine_bench.bench_full(scale)
    size_text = f"{full['contacts']:,} contacts, 1% drifted, unthrottled emulator"
    rate = full["contacts"] / full["run_s"] if full["run_s"] else 0
    rows = [
        Row(
            "Full reconcile time",
            f"{full['run_s']} s ({rate:,.0f} contacts/s; {full['listing_pages']:,} pages, "
            f"{full['updated']:,} drift PATCHes)",
            NO_TARGET,
            REPORTED,
            size_text,
        ),
        Row(
            "Full reconcile peak memory",
            f"{full['peak_rss_mb']} MB RSS (Python heap peak {full['python_peak_mb']} MB)",
            "< 300 MB",
            _verdict(full["peak_rss_mb"] < 300 and full["updated"] == full["drifted"]),
            size_text,
        ),
    ]
    return rows, full


def bench_import(size: str) -> Result:
    from tests.benchmarks import import_bench

    n = _pick(size, 1_000_000, 100_000, 5_000)
    result = import_bench.measure(n, echo=print)
    if len(result["runs"]) != 2:
        raise RuntimeError("the import benchmark did not get to the imports:\n" +
                           "\n".join(result["lines"][-5:]))  # fmt: skip
    first, again = result["runs"]
    peak = max(first["peak_rss_mb"], again["peak_rss_mb"])
    exits_ok = first["exit_code"] == 0 and again["exit_code"] == 0
    size_text = f"{n:,}-row CSV ({result.get('csv_mb', '?')} MB), SQLite, `syncd mirror import`"
    rows = [
        Row(
            "Mirror import rate",
            f"{first['rows_per_s']:,} rows/s ({first['seconds']} s); "
            f"re-import of the same file {again['rows_per_s']:,} rows/s",
            NO_TARGET,
            REPORTED if exits_ok else MISSES,
            size_text,
        ),
        Row(
            "Mirror import peak memory",
            f"{peak} MB RSS",
            "< 300 MB",
            _verdict(peak < 300 and exits_ok),
            size_text,
        ),
    ]
    return rows, result


def _ledger(size: str, postgres: str | None) -> Result:
    from tests.benchmarks import ledger_bench

    n = _pick(size, 1_000_000, 100_000, 20_000)
    repeat = _pick(size, 200, 100, 20)
    with ledger_bench.bench_database(postgres, None) as db:
        started = time.perf_counter()
        data = ledger_bench.load(db, n)
        load_s = time.perf_counter() - started
        timings = ledger_bench.run_queries(db, data, repeat)
    ext = timings[0]
    backend = "PostgreSQL" if postgres else "SQLite"
    slowest = max(timings[1:5], key=lambda t: t.median)
    row = Row(
        f"Ledger query latency, --external-id ({backend})",
        f"{ext.median:.2f} ms median, p95 {ext.p95:.2f} ms "
        f"(slowest other point query: {slowest.name} {slowest.median:.2f} ms)",
        "< 10 ms median",
        _verdict(ext.median < 10 and ext.rows > 0),
        f"{n:,} ledger rows, {len(ext.samples_ms)} queries",
    )
    raw = {
        "rows": n,
        "load_s": round(load_s, 1),
        "queries": [
            {"query": t.name, "median_ms": round(t.median, 3), "p95_ms": round(t.p95, 3),
             "rows": t.rows, "reps": len(t.samples_ms)}
            for t in timings
        ],
    }  # fmt: skip
    return [row], raw


def bench_ledger(size: str) -> Result:
    return _ledger(size, None)


def bench_ledger_pg(size: str) -> Result:
    return _ledger(size, os.environ[POSTGRES_ENV])


def bench_daemon(size: str) -> Result:
    from tests.benchmarks import daemon_bench

    scale = _pick(size, daemon_bench.FULL, daemon_bench.QUICK, daemon_bench.TINY)
    r = daemon_bench.measure(scale)
    idle = r["idle"]
    size_text = (
        f"real `syncd run` (production defaults), after a start-up run of "
        f"{r['startup_run']['contacts_created']:,} creates"
    )
    rows = [
        Row(
            "Daemon idle memory",
            f"{idle['rss_mib']} MiB RSS (peak {idle['peak_rss_mib']} MiB, "
            f"{idle['threads']} threads)",
            NO_TARGET,
            REPORTED,
            size_text,
        ),
        Row(
            "Daemon idle CPU",
            f"{idle['cpu_pct']}% of one CPU ({idle['cpu_s']} s over {idle['window_s']} s; "
            f"scheduled runs in it: {idle['scheduled_runs_in_window']})",
            NO_TARGET,
            REPORTED,
            size_text,
        ),
        Row(
            "Resync pick-up latency",
            f"median {r['pick_up_median_s']} s, max {r['pick_up_max_s']} s",
            "within a few seconds (max ≤ 3 s)",
            _verdict(r["pick_up_max_s"] <= 3 and r["exit_code"] == 0),
            f"{len(r['pick_up_s'])} `syncd resync`-style requests, poll_every 1 s",
        ),
    ]
    return rows, r


def bench_bulk(size: str) -> Result:
    import anyio

    from tests.benchmarks import bulk_bench

    scale = _pick(size, bulk_bench.FULL, bulk_bench.QUICK, bulk_bench.TINY)
    results = anyio.run(bulk_bench.run, scale)
    by_name = {r["scenario"]: r for r in results}
    size_text = (
        f"externalcontacts emulator at {scale.rpm:,}/min, {scale.latency_ms:.0f} ms latency; "
        f"{scale.create_seconds:g} s / {scale.update_seconds:g} s per scenario"
    )
    rows = []
    for kind in ("creates", "updates"):
        single = by_name.get(f"{kind}-single")
        bulks = [r for n, r in by_name.items() if n.startswith(f"{kind}-bulk-")]
        if not single or not bulks:
            continue
        best = max(bulks, key=lambda r: r["contacts_per_min"])
        ratio = best["contacts_per_min"] / max(single["contacts_per_min"], 1)
        clean = all(r["failed"] == 0 and r["duplicates"] == 0 for r in [single, *bulks])
        rows.append(
            Row(
                f"Bulk {kind} vs single calls (optional)",
                f"x{ratio:.1f}: {best['contacts_per_min']:,} contacts/min ({best['scenario']}) "
                f"vs {single['contacts_per_min']:,}",
                NO_TARGET,
                REPORTED if clean else MISSES,
                size_text,
            )
        )
    return rows, {"scenarios": results}


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    run: Callable[[str], Result]
    timeouts: tuple[float, float, float]  # seconds, for full, quick, ci
    skip: Callable[[], str | None] = lambda: None  # why it cannot run here, or None

    def timeout(self, size: str) -> float:
        return float(_pick(size, *self.timeouts))


def _no_postgres() -> str | None:
    return None if os.environ.get(POSTGRES_ENV) else f"{POSTGRES_ENV} is not set"


def _no_bulk() -> str | None:
    found = importlib.util.find_spec("tests.benchmarks.bulk_bench") is not None
    return None if found else "tests/benchmarks/bulk_bench.py does not exist"


BENCHES: dict[str, Bench] = {
    b.name: b
    for b in [
        Bench("rate", "Rate-limit utilization, 600/min", bench_rate, (300, 300, 120)),
        Bench("rate-scaled", "Rate-limit utilization, 6,000/min", bench_rate_scaled,
              (300, 300, 120)),
        Bench("429", "429 share under a mis-configured limit", bench_429, (600, 300, 120)),
        Bench("calls", "API calls per change vs the minimum", bench_calls, (900, 300, 120)),
        Bench("incremental", "Incremental run cost vs mirror size", bench_incremental,
              (2400, 600, 150)),
        Bench("full", "Full reconcile time and peak memory", bench_full, (1800, 600, 150)),
        Bench("import", "Mirror import rate and peak memory", bench_import, (1800, 600, 150)),
        Bench("ledger", "Ledger query latency (SQLite)", bench_ledger, (1200, 600, 120)),
        Bench("ledger-pg", "Ledger query latency (PostgreSQL)", bench_ledger_pg,
              (1200, 600, 120), skip=_no_postgres),
        Bench("daemon", "Daemon idle memory, CPU, resync pick-up", bench_daemon,
              (600, 300, 120)),
        Bench("bulk", "Bulk vs single calls (optional)", bench_bulk, (900, 300, 120),
              skip=_no_bulk),
    ]
}  # fmt: skip


def _own_peak_kib() -> int:
    """This process's own peak RSS (VmHWM). Not ``ru_maxrss``: that also counts the pages a
    forked child shared with its parent before ``exec`` (a pytest parent is big)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def child_main(name: str, size: str, result_path: Path) -> int:
    """Run one benchmark in this (child) process and write its rows to ``result_path``."""
    from syncd.logs import configure_logging

    configure_logging(level="warning", fmt="console")
    bench = BENCHES[name]
    payload: dict[str, Any]
    try:
        rows, raw = bench.run(size)
        for row in rows:
            row.bench = name
        payload = {"rows": [asdict(r) for r in rows], "raw": raw}
    except (Exception, SystemExit) as exc:
        traceback.print_exc()
        payload = {"error": f"{type(exc).__name__}: {exc}".strip()}
    payload["process"] = {
        "peak_rss_mb": round(_own_peak_kib() / 1024, 1),
        "children_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
    }
    result_path.write_text(json.dumps(payload, default=str), encoding="utf-8")
    return 1 if "error" in payload else 0


# -- the parent: one child per benchmark, then the table ------------------------------------


@dataclass
class ChildRun:
    bench: str
    rows: list[Row]
    seconds: float
    exit_code: int | None
    timed_out: bool
    cpu_s: float | None
    peak_rss_mb: float | None
    children_peak_rss_mb: float | None
    load_before: float
    load_after: float
    raw: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    log_tail: str = ""


@dataclass
class SuiteRun:
    size: str
    started_at: str
    cpus: int
    machine: str
    calibration_before_s: float
    calibration_after_s: float = 0.0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seconds: float = 0.0
    runs: list[ChildRun] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> list[Row]:
        return [row for run in self.runs for row in run.rows]


def calibrate() -> float:
    """Best of 3 timings of a fixed pure-Python loop: how fast this CPU is right now."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.perf_counter() - started)
    return round(best, 4)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL, the child's process group (the child leads it)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        if proc.returncode is None:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue
        time.sleep(0.5)  # leftover grandchildren get their turn before the SIGKILL


def run_child(bench: Bench, size: str, work: Path, *, verbose: bool = False) -> ChildRun:
    result_path = work / f"{bench.name}.json"
    log_path = work / f"{bench.name}.log"
    command = [
        sys.executable, "-m", "tests.benchmarks.suite",
        "--child", bench.name, "--size", size, "--result", str(result_path),
    ]  # fmt: skip
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    deadline = started + bench.timeout(size)
    timed_out, usage = False, None
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=sys.stderr.fileno() if verbose else log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.2)
    finally:
        _kill_group(proc)
    seconds = time.monotonic() - started
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
    run = ChildRun(
        bench=bench.name,
        rows=[],
        seconds=round(seconds, 1),
        exit_code=proc.returncode,
        timed_out=timed_out,
        cpu_s=round(usage.ru_utime + usage.ru_stime, 1) if usage and not timed_out else None,
        peak_rss_mb=None,
        children_peak_rss_mb=None,
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        log_tail=tail,
    )
    payload: dict[str, Any] = {}
    if result_path.exists():
        try:
            payload = json.loads(result_path.read_text(encoding="utf-8"))
        except ValueError:
            payload = {}
    process = payload.get("process", {})
    run.peak_rss_mb = process.get("peak_rss_mb")
    run.children_peak_rss_mb = process.get("children_peak_rss_mb")
    if timed_out:
        run.error = f"timed out after {bench.timeout(size):.0f} s"
    elif "error" in payload:
        run.error = str(payload["error"])
    elif "rows" not in payload:
        run.error = f"no result (exit code {proc.returncode})"
    if run.error:
        first_line = run.error.splitlines()[0][:160]
        run.rows = [Row(bench.title, f"error: {first_line}", "", ERROR, "", bench.name)]
    else:
        run.rows = [Row(**row) for row in payload["rows"]]
        run.raw = payload.get("raw", {})
        if not run.rows:
            run.rows = [Row(bench.title, "error: no rows", "", ERROR, "", bench.name)]
    return run


def select(only: Sequence[str] | None) -> list[Bench]:
    if not only:
        return list(BENCHES.values())
    names = [n for item in only for n in item.split(",") if n]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHES)}")
    return [BENCHES[n] for n in BENCHES if n in names]


def run_suite(
    size: str,
    only: Sequence[str] | None = None,
    *,
    verbose: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SuiteRun:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}")
    say = progress or (lambda _: None)
    benches = select(only)
    suite = SuiteRun(
        size=size,
        started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cpus=len(os.sched_getaffinity(0)),
        machine=f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        calibration_before_s=calibrate(),
        load_before=os.getloadavg(),
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-suite-") as tmp:
        for i, bench in enumerate(benches, 1):
            reason = bench.skip()
            if reason:
                suite.skipped[bench.name] = reason
                say(f"[{i}/{len(benches)}] {bench.name}: skipped ({reason})")
                continue
            say(f"[{i}/{len(benches)}] {bench.name} ...")
            run = run_child(bench, size, Path(tmp), verbose=verbose)
            suite.runs.append(run)
            verdicts = ", ".join(r.verdict for r in run.rows)
            say(f"[{i}/{len(benches)}] {bench.name}: {run.seconds:.1f} s, {verdicts}")
            if run.error and not verbose:
                say(f"--- {bench.name} output (tail) ---\n{run.log_tail}\n---")
    suite.seconds = round(time.monotonic() - started, 1)
    suite.calibration_after_s = calibrate()
    suite.load_after = os.getloadavg()
    return suite


# -- rendering ------------------------------------------------------------------------------

HEADERS = ("Benchmark", "Figure", "Target", "Verdict", "Measured at")


def _cells(suite: SuiteRun) -> list[tuple[str, str, str, str, str]]:
    info = suite.size == "ci"
    out = []
    for row in suite.rows:
        verdict = f"{row.verdict} (info)" if info and row.verdict != ERROR else row.verdict
        out.append((row.name, row.figure, row.target, verdict, row.size))
    return out


def _notes(suite: SuiteRun) -> list[str]:
    ratio = suite.calibration_after_s / suite.calibration_before_s
    lines = [
        f"Size: {suite.size}; {suite.started_at}; {suite.cpus} CPUs ({suite.machine}); "
        f"whole table {suite.seconds / 60:.1f} min.",
        f"Machine noise: load average (1/5/15 min) "
        f"{'/'.join(f'{x:.2f}' for x in suite.load_before)} at the start, "
        f"{'/'.join(f'{x:.2f}' for x in suite.load_after)} at the end; CPU calibration loop "
        f"{suite.calibration_before_s * 1000:.0f} ms at the start, "
        f"{suite.calibration_after_s * 1000:.0f} ms at the end (x{ratio:.2f}).",
    ]
    if suite.size == "ci":
        lines.append("CI size: figures are printed so the suite cannot rot; the verdicts are "
                     "informational (the sizes are far below the targets' sizes).")  # fmt: skip
    for name, reason in suite.skipped.items():
        lines.append(f"Skipped {name}: {reason}.")
    for run in suite.runs:
        rss = f"{run.peak_rss_mb} MB" if run.peak_rss_mb is not None else "?"
        sub = run.children_peak_rss_mb
        cpu = f"{run.cpu_s} s" if run.cpu_s is not None else "?"
        lines.append(
            f"{run.bench}: {run.seconds} s wall, {cpu} CPU (its subprocesses included), "
            f"peak RSS {rss}"
            + (f" (largest subprocess {sub} MB)" if sub else "")
            + f", load {run.load_before} -> {run.load_after}"
            + (f"; ERROR {run.error.splitlines()[0]}" if run.error else "")
        )
    return lines


def format_text(suite: SuiteRun) -> str:
    cells = _cells(suite)
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(HEADERS)]  # fmt: skip

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line(HEADERS), line(["-" * w for w in widths])]
    out += [line(c) for c in cells]
    out.append("")
    out += _notes(suite)
    return "\n".join(out)


def format_markdown(suite: SuiteRun) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(esc(v) for v in c) + " |" for c in _cells(suite)]
    out.append("")
    out += [f"- {note}" for note in _notes(suite)]
    return "\n".join(out)


def to_json(suite: SuiteRun) -> dict[str, Any]:
    data = asdict(suite)
    for run in data["runs"]:
        run.pop("log_tail", None)
    return data


def from_json(data: dict[str, Any]) -> SuiteRun:
    """The inverse of :func:`to_json` (``--render FILE`` prints a saved run again)."""
    runs = [
        ChildRun(**{"children_peak_rss_mb": None, **run, "rows": [Row(**r) for r in run["rows"]]})
        for run in data["runs"]
    ]
    fields = {k: v for k, v in data.items() if k != "runs"}
    for key in ("load_before", "load_after"):
        fields[key] = tuple(fields[key])
    return SuiteRun(**fields, runs=runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description="syncd's benchmark suite: one table with every figure of issue 8.",
    )
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="reduced sizes, a few minutes")
    sizes.add_argument("--ci", action="store_true", help="smoke sizes (< 3 min), informational")
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"any of: {', '.join(BENCHES)}")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write every figure here")
    parser.add_argument("--verbose", action="store_true", help="show each benchmark's output")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a 'misses' verdict too")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--render", metavar="FILE", type=Path, help="print a --json file again")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--size", choices=SIZES, default="full", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child, args.size, args.result)
    if args.list:
        for bench in BENCHES.values():
            reason = bench.skip()
            print(f"{bench.name:<12} {bench.title}" + (f"  [skipped: {reason}]" if reason else ""))
        return 0
    if args.render:
        saved = from_json(json.loads(args.render.read_text(encoding="utf-8")))
        print(format_markdown(saved) if args.markdown else format_text(saved))
        return 0
    size = "ci" if args.ci else "quick" if args.quick else "full"

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    suite = run_suite(size, args.only, verbose=args.verbose, progress=progress)
    print(format_markdown(suite) if args.markdown else format_text(suite))
    if args.json:
        args.json.write_text(json.dumps(to_json(suite), indent=2, default=str), encoding="utf-8")
    verdicts = {row.verdict for row in suite.rows}
    if ERROR in verdicts or (args.strict and size != "ci" and MISSES in verdicts):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
