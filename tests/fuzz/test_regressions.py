"""One regression test per bug the bad-input and security suites found (docs/security.md).

Each names the module the fix lives in; the fuzz tests find these again, but a named test
fails with a message a reader can act on.
"""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import anyio
import httpx
import pytest

from syncd.cli.mirror_cmd import printable
from syncd.config import load_settings, parse_settings
from syncd.errors import ApiProtocolError, ConfigError, OutcomeUnknownError
from syncd.genesys.profiles.reference import ReferenceProfile
from syncd.genesys.responses import server_message
from syncd.model import Contact
from syncd.store.db import Database
from syncd.sync.canonical import ContentRules
from syncd.sync.import_formats import ImportFileError, read_rows
from syncd.sync.importer import ImportOptions, import_mirror, validate
from tests.genesys.fakes import FakeServer, FakeTime, contact_json, make_client

HEADER = (
    b"externalId,firstName,lastName,email,workPhone,mobilePhone,homePhone,otherPhone,"
    b"organizationId,organizationName\n"
)


def _import(db: Database, data: bytes, fmt: str = "jsonl", **kw: object) -> object:
    return import_mirror(db, io.BytesIO(data), ImportOptions(fmt=fmt, **kw))  # type: ignore[arg-type]


# -- syncd/sync/import_formats.py, syncd/sync/importer.py -------------------------------------


def test_bug01_jsonl_lone_surrogate_escape_is_a_rejected_row(db: Database) -> None:
    """Was: UnicodeEncodeError from the database driver (traceback, import aborted)."""
    data = (
        b'{"externalId": "A1", "firstName": "\\ud800", "lastName": "x"}\n'
        b'{"externalId": "A\\udfff2", "firstName": "a", "lastName": "x"}\n'
        b'{"externalId": "OK", "firstName": "a", "lastName": "x"}\n'
    )
    report = _import(db, data)
    assert (report.rejected, report.inserted) == (2, 1)  # type: ignore[attr-defined]


def test_bug02_jsonl_nul_in_a_rejected_rows_id_on_postgresql(db: Database) -> None:
    """Was: psycopg DataError (PostgreSQL text cannot hold NUL) recording the rejected id."""
    data = b'{"externalId": "A\\u0000", "firstName": "a", "lastName": "x"}\n'
    data += HEADER[:0]
    report = _import(db, data)
    assert report.rejected == 1  # type: ignore[attr-defined]
    csv_data = HEADER + b"B\x001,a,b,,,,,,,\n"
    assert _import(db, csv_data, "csv").rejected == 1  # type: ignore[attr-defined]


def test_bug03_deeply_nested_json_line_is_a_rejected_row(db: Database) -> None:
    """Was: RecursionError (traceback)."""
    line = b'{"externalId": "D1", "firstName": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    report = _import(db, line)
    assert report.rejected == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("bom", [b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_bug04_utf16_and_utf32_files_are_refused_up_front(bom: bytes, fmt: str) -> None:
    """Was: CSV: a header error full of NULs; JSONL: every line rejected one by one."""
    with pytest.raises(ImportFileError, match=r"UTF-(16|32)"):
        _first_row(bom + b"x\x00y\x00\n\x00", fmt)


def _first_row(data: bytes, fmt: str) -> object:
    return next(iter(read_rows(io.BytesIO(data), fmt)))  # type: ignore[arg-type]


def test_bug05_rejection_reasons_are_bounded() -> None:
    """Was: a 1 MiB value quoted whole in the reason (and on the terminal)."""
    rows = read_rows(io.BytesIO(HEADER + b"R1,a,b,," + b"1" * 100_000 + b",,,,,\n"), "csv")
    reasons = validate(next(iter(rows)), ContentRules("US"))
    assert isinstance(reasons, list)
    assert all(len(r) <= 300 for r in reasons)


def test_bug06_over_long_line_is_reported_where_its_record_starts() -> None:
    """Was: the physical line of the overflow, not the first line of a multi-line record."""
    data = HEADER + b'R1,"a\nb",c,,,,,,,' + b"W" * (1024 * 1024 + 10) + b"\n"
    (row,) = list(read_rows(io.BytesIO(data), "csv"))
    assert row.line == 2


def test_bug07_broken_multi_line_record_holds_a_snapshot(db: Database) -> None:
    """Was: a quote left open swallowed E2's line, so a snapshot tombstoned E2 although the
    file names it."""
    first = HEADER + b"E1,a,b,,,,,,,\nE2,a,b,,,,,,,\n"
    _import(db, first, "csv", snapshot=True)
    broken = HEADER + b'E1,"a,b,,,,,,,\nE2,a,b,,,,,,,\n'
    report = _import(
        db, broken, "csv", snapshot=True, max_delete_count=100, max_delete_percent=100.0
    )
    assert report.held_reason is not None
    assert report.tombstoned == 0


# -- syncd/cli/mirror_cmd.py ------------------------------------------------------------------


def test_bug08_terminal_escapes_from_a_file_are_not_echoed() -> None:
    """Was: an id like ``\\x1b]0;...`` went to the operator's terminal raw."""
    shown = printable("rejected: line 2 (\x1b[2J\x07\u202e\x9b): bad")
    assert not any(ch in shown for ch in "\x1b\x07\u202e\x9b")
    assert "\\x1b" in shown


# -- syncd/config.py --------------------------------------------------------------------------


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(tomllib.loads(text))
    return info.value.problems


GENESYS = '[genesys]\nclient_id = "x"\n'


def test_bug09_a_secret_of_the_wrong_type_is_not_quoted() -> None:
    """Was: ``genesys.client_secret: Input should be a valid string (got 123456789)``."""
    for value in ("123456789", '["Sekrit-Value"]', '{a = "Sekrit-Value"}'):
        problems = _problems(GENESYS + f"client_secret = {value}\n")
        assert problems == ["genesys.client_secret: Input should be a valid string"]


@pytest.mark.parametrize("value", ["99999999999999999", "inf", "nan", '"99999999999999999d"'])
def test_bug10_absurd_durations_are_config_errors(value: str) -> None:
    """Was: OverflowError (traceback) or 'cannot convert float NaN to integer'."""
    (problem,) = _problems(GENESYS + f"client_secret = 's'\nread_timeout = {value}\n")
    assert problem.startswith("genesys.read_timeout: ")


def test_bug11_a_duration_that_rounds_to_zero_is_refused() -> None:
    """Was: ``connect_timeout = 0.0000001`` accepted as a zero timeout."""
    (problem,) = _problems(GENESYS + "client_secret = 's'\nconnect_timeout = 0.0000001\n")
    assert "microsecond" in problem


def test_bug12_nul_in_client_secret_file_path(tmp_path: Path) -> None:
    """Was: ValueError 'embedded null byte' (traceback)."""
    problems = _problems(GENESYS + 'client_secret_file = "a\\u0000b"\n')
    assert problems == ["genesys.client_secret_file: contains the control character '\\x00'"]


def test_bug13_control_characters_in_values_and_keys_are_one_line_problems() -> None:
    """Was: a NUL in a URL accepted (failing later, far away); a newline in a key or in a
    cron message split a problem over two lines."""
    assert _problems(GENESYS + 'client_secret = "s"\napi_url = "https://h\\u0000/"\n') == [
        "genesys.api_url: contains the control character '\\x00'"
    ]
    for problem in _problems('"\\n" = 1\n' + GENESYS):
        assert "\n" not in problem


def test_bug14_unknown_database_driver_is_a_config_error() -> None:
    """Was: NoSuchModuleError traceback from `syncd db upgrade`."""
    (problem,) = _problems(
        GENESYS + "client_secret = 's'\n[database]\nurl = 'postgresql+nope://u@h/db'\n"
    )
    assert problem.startswith("database.url: unknown database driver")


def test_bug15_cron_that_never_fires_is_refused() -> None:
    """Was: ``0 0 31 2 *`` accepted: no full reconcile would ever run."""
    (problem,) = _problems(
        GENESYS + "client_secret = 's'\n[sync]\nfull_reconcile_cron = '0 0 31 2 *'\n"
    )
    assert "never fires" in problem


def test_bug16_non_ascii_phone_region_is_refused() -> None:
    """Was: 'ß' upper-cased to 'SS' (South Sudan) and accepted."""
    (problem,) = _problems(GENESYS + "client_secret = 's'\ndefault_phone_region = 'ß'\n")
    assert problem.startswith("genesys.default_phone_region")


def test_bug17_blank_inline_secret_is_missing(tmp_path: Path) -> None:
    """Was: ``client_secret = "  "`` accepted as a secret."""
    path = tmp_path / "c.toml"
    path.write_text(GENESYS + 'client_secret = "  "\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="no client secret"):
        load_settings(path)


# -- syncd/genesys/client.py, responses.py, profiles/reference.py -----------------------------


def _call(response: httpx.Response, op: str = "get") -> object:
    server = FakeServer(FakeTime())
    server.default = response

    async def go() -> object:
        async with make_client(server) as client:
            if op == "create":
                return await client.create(Contact("e", "a", "b"))
            return await client.get("c-1")

    return anyio.run(go)


def test_bug18_deeply_nested_answers_are_protocol_errors() -> None:
    """Was: RecursionError from ``response.json()`` (success and error bodies alike)."""
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ApiProtocolError):
        _call(httpx.Response(200, content=deep))
    with pytest.raises(OutcomeUnknownError):
        _call(httpx.Response(201, content=deep), "create")
    assert len(server_message(httpx.Response(400, content=deep))) <= 500


def test_bug19_error_body_in_an_undecodable_charset() -> None:
    """Was: UnicodeError ('UTF-16 stream does not start with BOM') reading the message."""
    response = httpx.Response(
        400, content=b"abc", headers={"content-type": "text/plain; charset=utf-16"}
    )
    assert server_message(response)
    unknown = httpx.Response(400, content=b"abc", headers={"content-type": "text/plain; charset=x"})
    assert server_message(unknown) == "abc"


def test_bug20_an_interim_status_is_not_a_success() -> None:
    """Was: a 1xx answer taken as a 2xx (a DELETE 'succeeded' on 100)."""
    with pytest.raises(ApiProtocolError):
        _call(httpx.Response(100, json=contact_json()))
    with pytest.raises(OutcomeUnknownError):
        _call(httpx.Response(100, json=contact_json()), "create")


def test_bug21_a_server_ignoring_page_number_is_detected() -> None:
    """Was: an endless listing when every page is the same full page and ``total`` is absent
    or huge."""
    profile = ReferenceProfile()
    page = {"entities": [contact_json(f"c-{i}") for i in range(10)], "total": 10**9}
    assert profile.parse_page(page, None, 10).next_token == "2"
    with pytest.raises(ApiProtocolError, match="repeats an earlier page"):
        profile.parse_page(page, "2", 10)


def test_bug22_a_larger_echoed_page_size_does_not_cut_the_listing() -> None:
    """Was: asked 100, answered pageSize 1000 with 100 entities and total 250: the listing
    stopped after page 1 (a full page looked short)."""
    body = {"entities": [contact_json(f"c-{i}") for i in range(100)], "pageSize": 1000}
    assert ReferenceProfile().parse_page({**body, "total": 250}, None, 100).next_token == "2"


def test_bug23_server_messages_are_scrubbed_and_one_line() -> None:
    """Was: a 400 echoing ``Authorization: Bearer <token>`` stored the token in the ledger."""
    response = httpx.Response(
        400, json={"message": "bad\nAuthorization: Bearer abcdefghijklmnop1234\x1b[0m"}
    )
    message = server_message(response)
    assert "abcdefghijklmnop1234" not in message
    assert "\n" not in message
    assert "\x1b" not in message
