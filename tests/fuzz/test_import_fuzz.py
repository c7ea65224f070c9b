"""Bad input for `syncd mirror import`: CSV and JSON Lines, through the importer and the CLI.

Each example is a file of good rows and damaged rows (see ``importgen``) imported over a mirror
that already holds a few contacts. The model says what must happen: good rows in, exactly
in canonical form; damaged rows rejected at their physical line with a reason, leaving any
existing row for their id untouched; a file that cannot be used at all stops before writing
anything (exit 2); never an exception other than ``ImportFileError``; the change log grows
by exactly the rows written. On SQLite and PostgreSQL (NUL bytes, lone surrogates and
over-long values fail differently on each).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from syncd.cli import cli
from syncd.store.db import Database
from syncd.store.mirror import MirrorRow
from syncd.store.schema import crm_contacts, mirror_changes
from syncd.sync.importer import (
    Duplicate,
    ImportFileError,
    ImportOptions,
    ImportReport,
    Rejection,
    import_mirror,
)
from tests.fuzz._settings import fuzz
from tests.fuzz.importgen import CSV_DAMAGE, JSONL_DAMAGE, Case, Fmt, import_cases
from tests.support.notices import plain

# ------------------------------------------------------------------------------ the mirror


def reset(db: Database, base: list[MirrorRow]) -> None:
    """Empty the mirror and its change log, then load ``base`` (as an ETL job would)."""
    with db.write() as conn:
        conn.execute(sa.delete(crm_contacts))
        for row in base:
            conn.execute(
                sa.insert(crm_contacts).values(
                    external_id=row.external_id,
                    **dict(zip(_CONTENT, row.content(), strict=True)),
                    deleted=False,
                )
            )
        conn.execute(sa.delete(mirror_changes))


_CONTENT = (
    "first_name",
    "last_name",
    "email",
    "phone_numbers",
    "organization_id",
    "organization_name",
)


def mirror_state(db: Database) -> dict[str, tuple[MirrorRow, bool]]:
    c = crm_contacts.c
    with db.read() as conn:
        rows = conn.execute(sa.select(c.external_id, *(c[n] for n in _CONTENT), c.deleted)).all()
    return {
        r.external_id: (
            MirrorRow(r.external_id, *(getattr(r, n) for n in _CONTENT)),
            bool(r.deleted),
        )
        for r in rows
    }


def change_count(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(mirror_changes)).scalar_one()
        )


# ------------------------------------------------------------------------------- the model


def check_report_and_mirror(
    case: Case,
    report: ImportReport,
    rejections: list[Rejection],
    state: dict[str, tuple[MirrorRow, bool]],
    changes: int,
) -> None:
    """The model of one import that read the file (no file-level error)."""
    base = {row.external_id: row for row in case.base}
    good = {row.external_id: row.expected for row in case.good()}
    for rejection in rejections:
        assert rejection.reasons, rejection
        assert all(reason and len(reason) <= 400 for reason in rejection.reasons), rejection
    # Safety, always: no existing contact corrupted, no good row altered, no bad row in.
    for ext, (row, deleted) in state.items():
        assert not deleted, ext
        if ext in good:  # a good row swallowed by a contaminating one leaves the old content
            assert row == good[ext] or (case.contaminated and row == base.get(ext)), ext
        elif ext in base:
            assert row == base[ext], f"{ext} was changed by a rejected row"
        else:
            assert case.contaminated, f"{ext!r} is in the mirror but no good row has that id"
    assert set(base) <= set(state), "an import without --snapshot removed a contact"
    for row in case.clean_prefix():
        assert row.external_id in state, f"good row {row.external_id} is missing"
    assert report.exit_code == (1 if report.rejected else 0)
    assert report.rejected == len(rejections)
    if case.contaminated:
        first = next(r for r in case.rows if r.contaminating).lines[0]
        before = sorted(line for r in case.bad() for line in r.lines if line < first)
        assert sorted(r.line for r in rejections if r.line < first) == before
        return
    # Liveness, when no damage spills over: every good row in, every bad one reported.
    assert set(state) == set(base) | set(good)
    assert sorted(r.line for r in rejections) == sorted(
        line for r in case.bad() for line in r.lines
    ), [(r.damage, r.lines) for r in case.bad()]
    assert report.rows_read == len(good) + len(rejections)
    assert report.inserted == len(set(good) - set(base))
    updated = sum(1 for ext, row in good.items() if ext in base and base[ext] != row)
    assert report.updated == updated
    assert report.unchanged == sum(1 for ext, row in good.items() if base.get(ext) == row)
    assert changes == report.inserted + report.updated
    assert report.exit_code == (1 if case.bad() else 0)


def run_import(
    db: Database, case: Case, *, batch_size: int, dry_run: bool = False, snapshot: bool = False
) -> tuple[ImportReport | ImportFileError, list[Rejection], list[Duplicate]]:
    rejections: list[Rejection] = []
    duplicates: list[Duplicate] = []
    options = ImportOptions(
        fmt=case.fmt,
        dry_run=dry_run,
        snapshot=snapshot,
        batch_size=batch_size,
        max_delete_count=1000,
        max_delete_percent=100.0,
    )
    try:
        report = import_mirror(
            db,
            io.BytesIO(case.data),
            options,
            on_reject=rejections.append,
            on_duplicate=duplicates.append,
        )
    except ImportFileError as exc:
        return exc, rejections, duplicates
    return report, rejections, duplicates


BATCH_SIZES = st.sampled_from([1, 2, 3, 2000])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@fuzz(35)
@given(data=st.data())
def test_import_model(db: Database, fmt: Fmt, data: st.DataObject) -> None:
    case = data.draw(import_cases(fmt), label="case")
    batch_size = data.draw(BATCH_SIZES, label="batch_size")
    reset(db, case.base)
    before = mirror_state(db)
    if data.draw(st.booleans(), label="dry run first"):
        dry, dry_rejections, _ = run_import(db, case, batch_size=batch_size, dry_run=True)
        assert mirror_state(db) == before, "a dry run wrote to the mirror"
        assert change_count(db) == 0
    else:
        dry = None
    result, rejections, _ = run_import(db, case, batch_size=batch_size)
    if isinstance(result, ImportFileError):
        assert case.file_error is not None, f"unexpected file error: {result}"
        assert str(result).strip()
        assert "\n" not in str(result)
        assert mirror_state(db) == before
        assert change_count(db) == 0
        assert dry is None or isinstance(dry, ImportFileError)
        return
    assert case.file_error is None, f"{case.file_error}: the import went ahead"
    check_report_and_mirror(case, result, rejections, mirror_state(db), change_count(db))
    if isinstance(dry, ImportReport):
        for name in ("rows_read", "rejected", "inserted", "updated", "unchanged"):
            assert getattr(dry, name) == getattr(result, name), name
        assert [r.line for r in dry_rejections] == [r.line for r in rejections]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@fuzz(20)
@given(data=st.data())
def test_snapshot_never_tombstones_a_contact_the_file_names(
    db: Database, fmt: Fmt, data: st.DataObject
) -> None:
    """With --snapshot, a contact is tombstoned only if the file does not mention its id at
    all; a held snapshot (exit 3) tombstones nothing."""
    case = data.draw(import_cases(fmt, file_damage=False), label="case")
    reset(db, case.base)
    result, _, _ = run_import(db, case, batch_size=data.draw(BATCH_SIZES), snapshot=True)
    assert isinstance(result, ImportReport)
    state = mirror_state(db)
    tombstoned = {ext for ext, (_, deleted) in state.items() if deleted}
    unmentioned = {
        row.external_id for row in case.base if row.external_id.encode() not in case.data
    }
    assert tombstoned <= unmentioned
    if result.exit_code == 3:
        assert not tombstoned
        assert result.held_reason
    else:
        assert tombstoned == unmentioned
    assert result.tombstoned == len(tombstoned)


# -------------------------------------------------------------------------- the real CLI


@pytest.fixture
def config_for(db: Database, tmp_path: Path) -> Iterator[Path]:
    url = db.url.render_as_string(hide_password=False)
    path = tmp_path / "syncd.toml"
    path.write_text(
        f"[database]\nurl = {json.dumps(url)}\n[genesys]\nclient_id = 'x'\nclient_secret = 'y'\n",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@fuzz(8)
@given(data=st.data())
def test_cli_import_reports_every_rejected_line(
    db: Database, config_for: Path, tmp_path: Path, fmt: Fmt, data: st.DataObject
) -> None:
    """`syncd mirror import` on the same files: exit 0/1/2 as documented, every rejected line
    on stderr and in --rejects, control characters never reach the terminal, no traceback."""
    case = data.draw(import_cases(fmt), label="case")
    reset(db, case.base)
    before = mirror_state(db)
    source = tmp_path / f"export.{fmt}"
    source.write_bytes(case.data)
    rejects = tmp_path / "rejects.csv"
    rejects.unlink(missing_ok=True)
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config_for),
            "--log-level",
            "error",
            "mirror",
            "import",
            str(source),
            "--show-rejects",
            "1000",
            "--rejects",
            str(rejects),
        ],
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    stderr = plain(result.stderr)
    assert "Traceback" not in stderr + result.stdout
    assert not any(ch in stderr for ch in "\x00\x1b\x7f\x9b"), "raw control bytes on stderr"
    if case.file_error is not None:
        assert result.exit_code == 2, (case.file_error, result.output)
        assert stderr.startswith("syncd: error: "), stderr
        assert mirror_state(db) == before
        assert change_count(db) == 0
        return
    state = mirror_state(db)
    if not case.contaminated:
        assert set(state) == {r.external_id for r in case.base} | {
            r.external_id for r in case.good()
        }
    expected_lines = sorted(line for r in case.bad() for line in r.lines)
    if case.contaminated:
        assert result.exit_code in (0, 1), result.output
        return
    assert result.exit_code == (1 if case.bad() else 0), result.output
    for line in expected_lines:
        assert f"rejected: line {line}" in stderr, (line, stderr)
    with rejects.open(encoding="utf-8", newline="") as fh:
        listed = [int(r["line"]) for r in csv.DictReader(fh)]
    assert sorted(listed) == expected_lines


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [("csv", k) for k in CSV_DAMAGE] + [("jsonl", k) for k in JSONL_DAMAGE],
)
@fuzz(2)
@given(data=st.data())
def test_each_kind_of_damage(sqlite_db: Database, fmt: Fmt, kind: str, data: st.DataObject) -> None:
    """Every kind of damage on its own, between two good rows: rejected at its line (SQLite
    only: the model tests above run on both backends)."""
    db = sqlite_db
    case = data.draw(import_cases(fmt, file_damage=False, force=kind), label="case")
    reset(db, case.base)
    result, rejections, _ = run_import(db, case, batch_size=2000)
    assert isinstance(result, ImportReport)
    check_report_and_mirror(case, result, rejections, mirror_state(db), change_count(db))
    # An unbalanced quote may close on the same line and leave a readable record (what a
    # quote means is ambiguous there): the model's safety half still holds.
    assert result.rejected >= 1 or kind == "unbalanced_quote"
