"""`syncd mirror import` through the real CLI, on SQLite and PostgreSQL.

Every test drives ``syncd.cli.cli`` with a config file pointing at the ``db`` fixture and
then looks at the tables directly: the mirror rows, and the change log the triggers fill.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from syncd.cli import cli
from syncd.cli.context import AppContext
from syncd.store.db import Database
from syncd.store.schema import crm_contacts, mirror_changes
from syncd.sync.import_formats import CSV_COLUMNS
from syncd.sync.import_lines import MAX_LINE_BYTES

Run = Callable[..., Result]


def write_config(path: Path, url: str, sync: dict[str, Any] | None = None) -> Path:
    """A minimal valid config: the database, dummy credentials, optional [sync] keys."""
    text = f"[database]\nurl = {json.dumps(url)}\n[genesys]\nclient_id = 'x'\nclient_secret = 'y'\n"
    if sync:
        text += "[sync]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in sync.items())
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def run(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run(*args, input=None, sync=None)``: `syncd --config CFG mirror import ARGS...`."""
    opened: list[Database] = []
    original = AppContext.database

    def database(self: AppContext) -> Database:
        database = original(self)
        opened.append(database)
        return database

    monkeypatch.setattr(AppContext, "database", database)
    url = db.url.render_as_string(hide_password=False)

    def invoke(
        *args: str, input: bytes | str | None = None, sync: dict[str, Any] | None = None
    ) -> Result:
        config = write_config(tmp_path / "syncd.toml", url, sync)
        result = CliRunner().invoke(
            cli,
            ["--config", str(config), "--log-level", "warning", "mirror", "import", *args],
            input=input,
            catch_exceptions=False,
        )
        while opened:
            opened.pop().dispose()
        return result

    return invoke


def csv_bytes(*rows: dict[str, str], columns: tuple[str, ...] = CSV_COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def write(tmp_path: Path, name: str, data: bytes | str) -> str:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


def contact(external_id: str, **kw: str) -> dict[str, str]:
    row = {
        "externalId": external_id,
        "firstName": "Ann",
        "lastName": "Lee",
        "email": "",
        "workPhone": "",
        "mobilePhone": "",
        "homePhone": "",
        "otherPhone": "",
        "organizationId": "",
        "organizationName": "",
    }
    row.update(kw)
    return row


def mirror(db: Database) -> dict[str, dict[str, Any]]:
    """Every mirror row (all columns but updated_at), by externalId."""
    with db.read() as conn:
        rows = conn.execute(sa.select(crm_contacts)).mappings().all()
    return {
        r["external_id"]: {k: v for k, v in r.items() if k != "updated_at"}
        | {"deleted": bool(r["deleted"])}
        for r in rows
    }


def full_state(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with db.read() as conn:
        contacts = conn.execute(sa.select(crm_contacts).order_by(crm_contacts.c.external_id)).all()
        changes = conn.execute(sa.select(mirror_changes).order_by(mirror_changes.c.id)).all()
    return [tuple(r) for r in contacts], [tuple(r) for r in changes]


def changes(db: Database) -> list[tuple[str, str]]:
    with db.read() as conn:
        rows = conn.execute(
            sa.select(mirror_changes.c.external_id, mirror_changes.c.op).order_by(
                mirror_changes.c.id
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


def clear_changes(db: Database) -> None:
    with db.write() as conn:
        conn.execute(mirror_changes.delete())


_COUNTER = re.compile(
    r"^  (rows read|inserted|updated|unchanged|rejected|duplicates|tombstoned) +([\d,]+)"
)


def counters(result: Result) -> dict[str, int]:
    """The summary's counters ("  inserted   3") as a dict."""
    return {
        m.group(1): int(m.group(2).replace(",", ""))
        for line in result.stdout.splitlines()
        if (m := _COUNTER.match(line))
    }


def rejects(path: Path) -> dict[int, tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {int(r["line"]): (r["externalId"], r["reason"]) for r in csv.DictReader(handle)}


# ------------------------------------------------------------------------- CSV and JSONL


def test_csv_insert_then_update_and_unchanged(run: Run, db: Database, tmp_path: Path) -> None:
    first = csv_bytes(
        contact(
            "c1",
            firstName=" Jose\u0301 ",
            email=" Jose@Example.COM ",
            workPhone="(202) 555-0143",
            mobilePhone="+44 20 7946 0958",
            organizationId="o1",
            organizationName="Acme",
        ),
        contact("c2", email="ann@example.com"),
        contact("c3", homePhone="202.555.0199"),
    )
    result = run(write(tmp_path, "crm.csv", first))
    assert result.exit_code == 0, result.output
    assert counters(result)["inserted"] == 3
    rows = mirror(db)
    assert rows["c1"] == {
        "external_id": "c1",
        "first_name": "José",
        "last_name": "Lee",
        "email": "jose@example.com",
        "phone_numbers": [
            {"number": "+12025550143", "type": "WORK"},
            {"number": "+442079460958", "type": "MOBILE"},
        ],
        "organization_id": "o1",
        "organization_name": "Acme",
        "deleted": False,
    }
    assert rows["c1"]["first_name"] == "Jos\u00e9"  # NFC
    assert sorted(changes(db)) == [("c1", "I"), ("c2", "I"), ("c3", "I")]
    clear_changes(db)

    second = csv_bytes(
        # the same contact, written differently: canonically unchanged
        contact(
            "c1",
            firstName="José",
            email="jose@example.com",
            workPhone="+1 202-555-0143",
            mobilePhone="+442079460958",
            organizationId="o1",
            organizationName="Acme",
        ),
        contact("c2", email="ann.lee@example.com"),  # changed
        contact("c3", homePhone="202.555.0199"),  # identical
    )
    result = run(write(tmp_path, "crm2.csv", second))
    assert result.exit_code == 0, result.output
    got = counters(result)
    assert (got["inserted"], got["updated"], got["unchanged"]) == (0, 1, 2)
    assert changes(db) == [("c2", "U")]
    assert mirror(db)["c2"]["email"] == "ann.lee@example.com"


def test_jsonl_import(run: Run, db: Database, tmp_path: Path) -> None:
    lines = [
        {
            "externalId": "j1",
            "firstName": "Zoë",
            "lastName": "Müller",
            "email": "Z@X.DE",
            "phoneNumbers": [
                {"number": "+49 30 901820", "type": "work"},
                {"number": "(202) 555-0143", "type": "MOBILE"},
            ],
            "externalOrganization": {"id": "org-1", "name": "Tech"},
        },
        {
            "externalId": "j2",
            "firstName": "Bo",
            "lastName": "Li",
            "phoneNumbers": None,
            "externalOrganization": None,
            "id": "server-field-ignored",
        },
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines)
    result = run(write(tmp_path, "crm.jsonl", data))
    assert result.exit_code == 0, result.output
    rows = mirror(db)
    assert rows["j1"]["phone_numbers"] == [
        {"number": "+4930901820", "type": "WORK"},
        {"number": "+12025550143", "type": "MOBILE"},
    ]
    assert (rows["j1"]["organization_id"], rows["j1"]["organization_name"]) == ("org-1", "Tech")
    assert rows["j1"]["email"] == "z@x.de"
    assert rows["j2"]["phone_numbers"] == []
    assert rows["j2"]["organization_id"] is None
    clear_changes(db)
    result = run(write(tmp_path, "again.ndjson", data))
    assert result.exit_code == 0
    assert counters(result)["unchanged"] == 2
    assert changes(db) == []


def test_stdin_needs_format_and_works_with_it(run: Run, db: Database) -> None:
    data = csv_bytes(contact("s1"))
    result = run("-", input=data)
    assert result.exit_code == 2
    assert "--format" in result.stderr
    result = run("-", "--format", "csv", input=data)
    assert result.exit_code == 0, result.output
    assert set(mirror(db)) == {"s1"}


def test_undelete_a_tombstoned_contact(run: Run, db: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "crm.csv", csv_bytes(contact("u1"), contact("u2")))
    assert run(path).exit_code == 0
    with db.write() as conn:
        conn.execute(
            crm_contacts.update().where(crm_contacts.c.external_id == "u1").values(deleted=True)
        )
    clear_changes(db)
    result = run(path)
    assert result.exit_code == 0
    assert "1 un-deleted" in result.stdout
    assert mirror(db)["u1"]["deleted"] is False
    assert changes(db) == [("u1", "U")]


def test_bad_csv_rows_are_reported_and_good_rows_go_in(
    run: Run, db: Database, tmp_path: Path
) -> None:
    header = ",".join(CSV_COLUMNS).encode()
    good = b"g1,Ann,Lee,ann@example.com,(202) 555-0143,,,,,\n"
    body = [
        b"b1,Ann,Lee,ann@example.com,,,,,,\n",  # line 2: fine
        b"b2,Ren\xe9,Lee,,,,,,,\n",  # 3: latin-1 byte
        b"b3,Ann,Lee\n",  # 4: too few fields
        b",Ann,Lee,,,,,,,\n",  # 5: missing externalId
        b"b5,Ann,Lee,not-an-email,,,,,,\n",  # 6
        b"b6,Ann,Lee,,+1 202 555,,,,,\n",  # 7: impossible phone
        b"b7,Ann,,,,,,,,\n",  # 8: missing lastName
        b"b8," + b"A" * 1001 + b",Lee,,,,,,,\n",  # 9: oversized name
        b"b9,Ann\x01,Lee,a\x02b@example.com,,,,,,\n",  # 10: control characters
        b'b10,"' + b"x" * 200_000 + b'",Lee,,,,,,,\n',  # 11: over the CSV field limit
        b"b11,Ann,Lee,,,,,,,,extra\n",  # 12: too many fields
        b"\n",  # 13: blank, skipped
        b'b12,"Ann\nMarie",Lee,,,,,,,\n',  # 14-15: a quoted newline is fine
        b"b13,Bad,Lee,bad@,,,,,,\n",  # 16: bad email
        good,  # 17
    ]
    path = write(tmp_path, "bad.csv", header + b"\n" + b"".join(body))
    rejects_path = tmp_path / "rejects.csv"
    result = run(path, "--rejects", str(rejects_path), "--show-rejects", "100")
    assert result.exit_code == 1, result.output
    got = rejects(rejects_path)
    expected = {
        3: ("b2", "firstName: not valid utf-8"),
        4: ("b3", "has 3 fields but the header has 10"),
        5: ("", "externalId: missing"),
        6: ("b5", "email: 'not-an-email' is not a valid address"),
        7: ("b6", "is not a possible phone number"),
        8: ("b7", "lastName: missing"),
        9: ("b8", "firstName: longer than 1000 characters"),
        10: ("b9", "firstName: contains control characters"),
        11: ("", "field larger than field limit"),
        12: ("b11", "has 11 fields but the header has 10"),
        16: ("b13", "email: 'bad@' is not a valid address"),
    }
    assert set(got) == set(expected)
    for line, (external_id, reason) in expected.items():
        assert got[line][0] == external_id
        assert reason in got[line][1], (line, got[line])
    assert "email: contains control characters" in got[10][1]  # every reason, not the first
    for line in expected:
        assert f"rejected: line {line}" in result.stderr
    assert set(mirror(db)) == {"b1", "b12", "g1"}
    assert mirror(db)["b12"]["first_name"] == "Ann Marie"  # a line break in a name is a space
    assert counters(result)["rejected"] == len(expected)


def test_bad_jsonl_rows_are_reported_and_good_rows_go_in(
    run: Run, db: Database, tmp_path: Path
) -> None:
    lines = [
        '{"externalId": "ok1", "firstName": "Ann", "lastName": "Lee"}',  # 1
        '{"externalId": "m1", "firstName": "Ann", "lastName": ',  # 2 malformed
        '["not", "an", "object"]',  # 3
        '{"externalId": "t1", "firstName": 42, "lastName": "Lee", "phoneNumbers": "x"}',  # 4
        '{"firstName": "Ann", "lastName": "Lee"}',  # 5 missing externalId
        '{"externalId": 17, "firstName": "Ann", "lastName": "Lee"}',  # 6 numeric id
        '{"externalId": "e1", "firstName": "Ann", "lastName": "Lee", "email": "@x"}',  # 7
        '{"externalId": "c1", "firstName": "A\\u0000n", "lastName": "Lee"}',  # 8
        "",  # 9 blank
        '{"externalId": "ok2", "firstName": "Bo", "lastName": "Li", '
        '"phoneNumbers": [{"number": "202 555 0143"}]}',  # 10
        '{"externalId": "p1", "firstName": "Bo", "lastName": "Li", '
        '"phoneNumbers": [{"number": "+1 999", "type": "WORK"}, {"number": 5}]}',  # 11
    ]
    data = "\n".join(lines).encode() + b"\n" + b'{"externalId": "enc1", "lastName": "L\xe9e"}\n'
    rejects_path = tmp_path / "rejects.csv"
    result = run(write(tmp_path, "bad.jsonl", data), "--rejects", str(rejects_path))
    assert result.exit_code == 1, result.output
    got = rejects(rejects_path)
    expected = {
        2: ("m1", "not valid JSON"),
        3: ("", "expected a JSON object, got an array"),
        4: ("t1", "firstName: expected a string or null, got a number"),
        5: ("", "externalId: missing"),
        6: ("17", "externalId: expected a string, got a number"),
        7: ("e1", "email: '@x' is not a valid address"),
        8: ("c1", "firstName: contains control characters"),
        11: ("p1", "phoneNumbers[1].number: expected a string"),
        12: ("enc1", "not valid utf-8"),
    }
    assert set(got) == set(expected)
    for line, (external_id, reason) in expected.items():
        assert got[line][0] == external_id, (line, got[line])
        assert reason in got[line][1], (line, got[line])
    assert "phoneNumbers: expected an array" in got[4][1]
    assert "'+1 999' is not a possible phone number" in got[11][1]
    assert set(mirror(db)) == {"ok1", "ok2"}
    assert mirror(db)["ok2"]["phone_numbers"] == [{"number": "+12025550143", "type": "WORK"}]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"externalId,firstName,lastName,email,workPhone,mobilePhone,homePhone,otherPhone,"
            b"organizationId,organizationName,fax\n",
            "unknown columns: 'fax'",
        ),
        (
            b"externalId,firstName,lastName,email\n",
            "missing columns: workPhone, mobilePhone, homePhone, otherPhone",
        ),
        (b"", "the file is empty"),
        (
            b"externalId,externalId,firstName,lastName,email,workPhone,mobilePhone,homePhone,"
            b"otherPhone,organizationId,organizationName\n",
            "'externalId' appears twice",
        ),
    ],
)
def test_bad_header_exits_2_and_writes_nothing(
    run: Run, db: Database, tmp_path: Path, data: bytes, message: str
) -> None:
    before = full_state(db)
    result = run(write(tmp_path, "bad.csv", data + (b"x1,Ann,Lee,,,,,,,\n" if data else b"")))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert full_state(db) == before


_HEADER = ",".join(CSV_COLUMNS)


def test_phones_must_be_valid_and_whole_and_names_have_one_line(
    run: Run, db: Database, tmp_path: Path
) -> None:
    """A number that only looks possible, or one with an extension, is rejected with the
    reason (never sent altered); a tab or line break inside a name reads as one space."""
    body = [
        b"p1,Ann,Lee,,01 42 68 53 00,,,,,\n",  # line 2: French, no +33: not a US number
        b"p2,Ann,Lee,,(202) 555-0143 ext. 12,,,,,\n",  # 3: an extension
        b"p3,Ann,Lee,,+1 999 555 0100,,,,,\n",  # 4: no such area code
        b'n1,"Ann\tMarie","Van\r\n  Lee",,+33 1 42 68 53 00,,,,,"Acme\nCorp"\n',  # 5-6
    ]
    path = write(tmp_path, "crm.csv", _HEADER.encode() + b"\n" + b"".join(body))
    rejects_path = tmp_path / "rejects.csv"
    result = run(path, "--rejects", str(rejects_path))
    assert result.exit_code == 1, result.output
    got = rejects(rejects_path)
    assert set(got) == {2, 3, 4}
    assert "'01 42 68 53 00' is not a valid number in US" in got[2][1]
    assert "+country code" in got[2][1]
    assert "has an extension (12)" in got[3][1]
    assert "'+1 999 555 0100' is not a valid number" in got[4][1]
    assert set(mirror(db)) == {"n1"}
    row = mirror(db)["n1"]
    assert (row["first_name"], row["last_name"]) == ("Ann Marie", "Van Lee")
    assert row["organization_name"] == "Acme Corp"
    assert row["phone_numbers"] == [{"number": "+33142685300", "type": "WORK"}]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_HEADER.replace(",", ";").encode() + b"\nr1;Ann;Lee;;;;;;;\n", "separated by ';'"),
        (_HEADER.replace(",", "\t").encode() + b"\n", "separated by a tab"),
        (_HEADER.encode("utf-16"), "the file is UTF-16 text"),
        (_HEADER.encode("utf-16-le"), "not utf-8 text"),
        (gzip.compress(csv_bytes(contact("r1")), mtime=0), "this is a gzip file"),
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)), "this is a ZIP archive"),
        (bytes(range(256)) * 4, "not utf-8 text"),
    ],
    ids=["semicolons", "tabs", "utf-16", "utf-16-no-bom", "gzip-named-csv", "xlsx", "binary"],
)
def test_a_file_that_is_not_comma_separated_text_is_one_line(
    run: Run, db: Database, tmp_path: Path, data: bytes, message: str
) -> None:
    """Binary, UTF-16 or another delimiter: the cause in one line, not ten missing columns."""
    before = full_state(db)
    result = run(write(tmp_path, "crm.csv", data))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "missing columns" not in result.stderr
    assert full_state(db) == before


def test_a_config_error_keeps_one_problem_per_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Import wraps configuration errors; their line breaks stay breaks, not '\\n' text."""
    monkeypatch.setenv("SYNCD_CONFIG", str(tmp_path / "absent.toml"))
    result = CliRunner().invoke(cli, ["mirror", "import", write(tmp_path, "x.csv", b"")])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[0] == "syncd: error: invalid configuration:"
    assert result.stderr.splitlines()[1].startswith("  - configuration file not found")
    assert "\\n" not in result.stderr


def test_header_any_order_any_case_and_bom(run: Run, db: Database, tmp_path: Path) -> None:
    columns = tuple(reversed(CSV_COLUMNS))
    data = csv_bytes(contact("r1", workPhone="2025550143"), columns=columns)
    data = b"\xef\xbb\xbf" + data.replace(b"externalId", b"ExternalID", 1)
    result = run(write(tmp_path, "crm.csv", data.replace(b"\n", b"\r\n")))
    assert result.exit_code == 0, result.output
    assert mirror(db)["r1"]["phone_numbers"] == [{"number": "+12025550143", "type": "WORK"}]


def test_unreadable_file_and_unknown_extension_exit_2(run: Run, tmp_path: Path) -> None:
    result = run(str(tmp_path / "missing.csv"))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
    result = run(write(tmp_path, "crm.xlsx", b"x"))
    assert result.exit_code == 2
    assert "--format" in result.stderr


def test_allow_mass_delete_needs_snapshot(run: Run, tmp_path: Path) -> None:
    result = run(write(tmp_path, "crm.csv", csv_bytes(contact("a"))), "--allow-mass-delete")
    assert result.exit_code == 2
    assert "only applies to a --snapshot import" in result.stderr


def test_gzip_and_encoding_option(run: Run, db: Database, tmp_path: Path) -> None:
    import gzip

    data = csv_bytes(contact("z1", firstName="Renée")).decode().encode("cp1252")
    path = tmp_path / "crm.csv.gz"
    path.write_bytes(gzip.compress(data))
    assert run(str(path)).exit_code == 1  # not UTF-8
    result = run(str(path), "--encoding", "cp1252")
    assert result.exit_code == 0, result.output
    assert mirror(db)["z1"]["first_name"] == "Renée"


def test_duplicates_last_occurrence_wins_across_batches(
    run: Run, db: Database, tmp_path: Path
) -> None:
    rows = [contact(f"d{i}") for i in range(5)] + [contact("d1", lastName="Later")]
    result = run(write(tmp_path, "dup.csv", csv_bytes(*rows)), "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "line 7: externalId d1 already appeared on line 3" in result.stderr
    assert counters(result)["duplicates"] == 1
    assert mirror(db)["d1"]["last_name"] == "Later"
    assert len(mirror(db)) == 5


def test_many_small_batches(run: Run, db: Database, tmp_path: Path) -> None:
    rows = [contact(f"m{i:03}", workPhone=f"202555{i:04}") for i in range(25)]
    result = run(write(tmp_path, "many.csv", csv_bytes(*rows)), "--batch-size", "4")
    assert result.exit_code == 0, result.output
    assert len(mirror(db)) == 25
    assert len(changes(db)) == 25


# ----------------------------------------------------------------------------- snapshots

GENEROUS = {"max_delete_count": 1000, "max_delete_percent": 100}


def seed(run: Run, tmp_path: Path, n: int) -> list[dict[str, str]]:
    rows = [contact(f"s{i:03}") for i in range(n)]
    assert run(write(tmp_path, "seed.csv", csv_bytes(*rows))).exit_code == 0
    return rows


def test_snapshot_tombstones_missing_rows_but_not_rejected_ones(
    run: Run, db: Database, tmp_path: Path
) -> None:
    rows = seed(run, tmp_path, 10)
    clear_changes(db)
    kept = rows[:7]
    kept[6] = contact("s006", email="broken@")  # rejected, yet present
    kept.append(contact("new1"))
    path = write(tmp_path, "snap.csv", csv_bytes(*kept))
    result = run(path, "--snapshot", sync=GENEROUS)
    assert result.exit_code == 1, result.output  # one rejected row
    state = mirror(db)
    assert {k for k, v in state.items() if v["deleted"]} == {"s007", "s008", "s009"}
    assert state["s006"]["deleted"] is False
    assert counters(result)["tombstoned"] == 3
    assert sorted(changes(db)) == [("new1", "I"), ("s007", "U"), ("s008", "U"), ("s009", "U")]
    # Tombstoned rows stay tombstoned, quietly, on the next snapshot.
    clear_changes(db)
    result = run(path, "--snapshot", sync=GENEROUS)
    assert counters(result)["tombstoned"] == 0
    assert changes(db) == []


@pytest.mark.parametrize(
    ("sync", "keep", "reason"),
    [
        ({"max_delete_count": 2, "max_delete_percent": 100}, 7, "sync.max_delete_count (2)"),
        ({"max_delete_count": 100, "max_delete_percent": 20}, 7, "sync.max_delete_percent (20%)"),
        (GENEROUS, 0, "the file has no valid rows"),
    ],
    ids=["count", "percent", "empty"],
)
def test_snapshot_guard_holds_with_exit_3_and_no_change(
    run: Run, db: Database, tmp_path: Path, sync: dict[str, Any], keep: int, reason: str
) -> None:
    rows = seed(run, tmp_path, 10)
    clear_changes(db)
    before = full_state(db)
    path = write(tmp_path, "snap.csv", csv_bytes(*rows[:keep]))
    result = run(path, "--snapshot", sync=sync)
    assert result.exit_code == 3, result.output
    assert reason in result.stderr
    assert f"{10 - keep} live contacts missing from the file were NOT tombstoned" in result.stderr
    assert "--allow-mass-delete" in result.stderr
    assert full_state(db) == before

    result = run(path, "--snapshot", "--allow-mass-delete", sync=sync)
    assert result.exit_code == 0, result.output
    assert sum(v["deleted"] for v in mirror(db).values()) == 10 - keep


def test_snapshot_with_unidentifiable_row_holds(run: Run, db: Database, tmp_path: Path) -> None:
    seed(run, tmp_path, 10)
    data = (
        "\n".join(
            [
                json.dumps({"externalId": f"s{i:03}", "firstName": "Ann", "lastName": "Lee"})
                for i in range(9)
            ]
            + ["{this is not json"]
        )
        + "\n"
    )
    result = run(write(tmp_path, "snap.jsonl", data), "--snapshot", sync=GENEROUS)
    assert result.exit_code == 3, result.output
    assert "no readable externalId" in result.stderr
    assert not any(v["deleted"] for v in mirror(db).values())


def test_snapshot_holds_when_an_open_quote_swallows_the_last_row(
    run: Run, db: Database, tmp_path: Path
) -> None:
    """A quote opened at the start of the last record runs to the end of the file: the one
    cell it yields reads like an id ("s009,Ann,...") but is not one, so s009 is unaccounted for
    and the snapshot must hold rather than tombstone it (found by the import fuzzer)."""
    rows = seed(run, tmp_path, 10)
    data = csv_bytes(*rows[:9]) + b'"' + csv_bytes(rows[9]).split(b"\n", 1)[1]
    result = run(write(tmp_path, "snap.csv", data), "--snapshot", sync=GENEROUS)
    assert result.exit_code == 3, result.output
    assert "no readable externalId" in result.stderr
    assert not any(v["deleted"] for v in mirror(db).values())


def test_a_stray_quote_rejects_the_row_and_holds_a_snapshot(
    run: Run, db: Database, tmp_path: Path
) -> None:
    """`"s009,",Ann"` parses (Python's reader takes the second quote literally) into a row
    whose id is `s009,`: that guess is refused, with the row's line, and s009 is not
    tombstoned on its strength (found by the import fuzzer)."""
    rows = seed(run, tmp_path, 10)
    data = csv_bytes(*rows[:9]) + b'"s009,",Ann",Lee,,,,,,,\n'
    rejects_path = tmp_path / "rejects.csv"
    path = write(tmp_path, "snap.csv", data)
    result = run(path, "--snapshot", "--rejects", str(rejects_path), sync=GENEROUS)
    assert result.exit_code == 3, result.output
    assert "no readable externalId" in result.stderr
    assert rejects(rejects_path) == {
        11: ("", "malformed CSV: a quote inside an unquoted field (quote the whole field, "
             "doubling it)")
    }  # fmt: skip
    assert not any(v["deleted"] for v in mirror(db).values())
    assert "s009," not in mirror(db)


def test_a_bom_does_not_hide_a_line_just_over_the_limit(
    run: Run, db: Database, tmp_path: Path
) -> None:
    """The line limit counts the BOM too: a first line that fits only once its BOM is taken
    off is one too-long line, not a line plus a second made of its tail."""
    padding = "W" * (MAX_LINE_BYTES - 56)  # the line, BOM included, is the limit + 2 bytes
    first = json.dumps({"externalId": "big", "firstName": "A", "lastName": padding})
    data = b"\xef\xbb\xbf" + first.encode() + b"\n"
    data += json.dumps({"externalId": "ok", "firstName": "B", "lastName": "C"}).encode() + b"\n"
    assert len(data.split(b"\n")[0]) == MAX_LINE_BYTES + 2
    rejects_path = tmp_path / "rejects.csv"
    result = run(write(tmp_path, "big.jsonl", data), "--rejects", str(rejects_path))
    assert result.exit_code == 1, result.output
    assert list(rejects(rejects_path)) == [1]
    assert set(mirror(db)) == {"ok"}


def test_snapshot_of_an_empty_jsonl_file_holds(run: Run, db: Database, tmp_path: Path) -> None:
    seed(run, tmp_path, 3)
    result = run(write(tmp_path, "empty.jsonl", b""), "--snapshot", sync=GENEROUS)
    assert result.exit_code == 3
    assert "no valid rows" in result.stderr


def test_snapshot_of_an_empty_file_into_an_empty_mirror(run: Run, tmp_path: Path) -> None:
    result = run(write(tmp_path, "empty.jsonl", b""), "--snapshot")
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------------------ dry run


def test_dry_run_writes_nothing(run: Run, db: Database, tmp_path: Path) -> None:
    rows = seed(run, tmp_path, 10)
    with db.write() as conn:
        conn.execute(
            crm_contacts.update().where(crm_contacts.c.external_id == "s000").values(deleted=True)
        )
    before = full_state(db)
    new = [
        *rows[:8],
        contact("s001", email="new@example.com"),
        contact("fresh"),
        contact("bad", email="x@"),
    ]
    new = [r for r in new if r is not rows[1]]
    path = write(tmp_path, "dry.csv", csv_bytes(*new))
    result = run(path, "--snapshot", "--dry-run", sync=GENEROUS)
    assert result.exit_code == 1, result.output
    assert "DRY RUN" in result.stdout
    got = counters(result)
    assert got["inserted"] == 1
    assert got["updated"] == 2  # s001 changed, s000 un-deleted
    assert got["unchanged"] == 6
    assert got["rejected"] == 1
    assert got["tombstoned"] == 2  # s008, s009
    assert full_state(db) == before

    # The same run for real does exactly what the dry run announced.
    result = run(path, "--snapshot", sync=GENEROUS)
    assert counters(result) == got


def test_dry_run_reports_a_held_guard(run: Run, db: Database, tmp_path: Path) -> None:
    seed(run, tmp_path, 10)
    before = full_state(db)
    result = run(write(tmp_path, "e.csv", csv_bytes()), "--snapshot", "--dry-run")
    assert result.exit_code == 3
    assert "would NOT be tombstoned" in result.stderr
    assert full_state(db) == before


def test_snapshot_percent_is_of_the_contacts_live_before_the_import(
    run: Run, db: Database, tmp_path: Path
) -> None:
    rows = seed(run, tmp_path, 10)
    # 3 of 10 existing contacts go (30%); the 100 new rows must not dilute that to 3/107.
    new = [contact(f"n{i:03}") for i in range(100)]
    path = write(tmp_path, "snap.csv", csv_bytes(*rows[:7], *new))
    result = run(path, "--snapshot", sync={"max_delete_count": 100, "max_delete_percent": 20})
    assert result.exit_code == 3, result.output
    assert "30.0% of the 10 live contacts" in result.stderr
    assert counters(result)["inserted"] == 100
    assert not any(v["deleted"] for v in mirror(db).values())
