"""Bad configuration files: every case is a ``ConfigError`` naming its keys, or a valid config.

Three sources of documents: mutations of ``config.example.toml`` (a value replaced by one of
another type or an absurd one, a key removed, an unknown key added), random TOML documents,
and random edits of the example's text (so TOML syntax errors and encodings are covered).
Through :func:`syncd.config.load_settings` and through the real entry point
(:func:`syncd.cli.main`, ``syncd config check``): exit 0 with the effective configuration, or
exit 2 with one line per problem; never a traceback, never the secret.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from syncd.cli import main
from syncd.config import Settings, load_settings, parse_settings
from syncd.errors import ConfigError
from tests.fuzz._settings import fuzz

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")
SECRET = "Fuzz-Secret-7c1d9e2b-never-printed"
BASE: dict[str, Any] = tomllib.loads(EXAMPLE_TEXT.replace("change-me", SECRET))

TOML_SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),  # inf and nan included: TOML has them
    st.text(max_size=30),
    st.sampled_from(["", " ", "0", "-1s", "1e400", "99999999999d", "0.0000001s", "5m", "nan"]),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 1, 1)),
    st.dates(),
    st.times(),
)
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
PATHS = [(section, key) for section, values in BASE.items() for key in values]
KEY = re.compile(r"^[^\n]+$")


@st.composite
def mutated_examples(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """The example with 1-3 mutations, and the sections they touched."""
    data = {section: dict(values) for section, values in BASE.items()}
    touched: set[str] = set()
    for _ in range(draw(st.integers(1, 3))):
        section, key = draw(st.sampled_from(PATHS))
        if not isinstance(data[section], dict):
            continue
        kind = draw(st.sampled_from(["value", "value", "drop", "unknown", "section", "secret"]))
        if kind == "value":
            data[section][key] = draw(TOML_VALUES)
        elif kind == "drop":
            data[section].pop(key, None)
        elif kind == "unknown":
            data[section][draw(st.text(min_size=1, max_size=12))] = draw(TOML_VALUES)
        elif kind == "section":
            data[section] = draw(TOML_VALUES)
        else:  # the secret in a shape pydantic refuses: the message must not quote it
            data["genesys"]["client_secret"] = draw(
                st.sampled_from([[SECRET], {"v": SECRET}, 12345678901234567890 % 2**62])
            )
            section = "genesys"
        touched.add(section)
    return data, touched


def _check_problems(exc: ConfigError) -> None:
    assert exc.problems
    for problem in exc.problems:
        assert KEY.match(problem), f"a problem spans lines: {problem!r}"
        key, sep, message = problem.partition(": ")
        assert sep, problem
        assert key, problem
        assert message, problem
        assert SECRET not in problem
    assert SECRET not in str(exc)


@fuzz(200)
@given(case=mutated_examples())
def test_mutated_example_is_a_config_error_or_valid(case: tuple[dict[str, Any], set[str]]) -> None:
    data, sections = case
    try:
        settings = parse_settings(data)
    except ConfigError as exc:
        error = exc
    else:
        assert isinstance(settings, Settings)
        assert settings.genesys.client_secret is not None
        return
    _check_problems(error)
    names = {p.partition(": ")[0].split(".")[0] for p in error.problems}
    assert names <= sections | {"genesys", "(top level)"}, error.problems


@fuzz(150)
@given(data=st.dictionaries(st.text(max_size=10), TOML_VALUES, max_size=5))
def test_random_documents(data: dict[str, Any]) -> None:
    try:
        parse_settings(data)
    except ConfigError as exc:
        _check_problems(exc)


@st.composite
def edited_texts(draw: st.DrawFn) -> bytes:
    lines = EXAMPLE_TEXT.replace("change-me", SECRET).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["delete", "insert", "cut", "duplicate"]))
        if kind == "delete":
            del lines[index]
        elif kind == "insert":
            lines.insert(index, draw(st.text(max_size=30)))
        elif kind == "cut":
            lines[index] = lines[index][: draw(st.integers(0, len(lines[index])))]
        else:
            lines.insert(index, lines[index])
    text = "\n".join(lines).encode("utf-8", "surrogatepass")
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1-junk"]))
    if encoding == "utf-16":
        return text.decode("utf-8", "replace").encode("utf-16")
    if encoding == "latin-1-junk":
        return text + b"\n# \xff\xfe\x00"
    return text


def _run_main(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        else:  # pragma: no cover - main always exits
            code = 0
    return code, out.getvalue(), err.getvalue()


@fuzz(60)
@given(text=edited_texts())
def test_edited_files_through_load_settings(tmp_path_factory: Any, text: bytes) -> None:
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_bytes(text)
    path.chmod(0o600)
    try:
        load_settings(path)
    except ConfigError as exc:
        error = exc
    else:
        return
    assert SECRET not in str(error)
    for problem in error.problems:
        assert "\n" not in problem


@fuzz(25)
@given(case=st.one_of(edited_texts(), mutated_examples()))
def test_config_check_entry_point(tmp_path_factory: Any, case: Any) -> None:
    """`syncd config check` through the real entry point: 0 or 2, no traceback, no secret."""
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    if isinstance(case, bytes):
        path.write_bytes(case)
    else:
        path.write_text(_toml(case[0]), encoding="utf-8")
    path.chmod(0o600)
    code, out, err = _run_main(["--config", str(path), "config", "check", "--format", "json"])
    assert code in (0, 2), (code, err)
    assert "Traceback" not in out + err
    assert SECRET not in out + err
    if code == 2:
        assert err.startswith("syncd: error: "), err
    else:
        assert '"client_secret": "***redacted***"' in out


def _toml(data: dict[str, Any]) -> str:
    """Just enough of a TOML writer for the mutated example (tables of values)."""
    lines = []
    for section, values in data.items():
        if not isinstance(values, dict):
            lines.insert(0, f"{_key(section)} = {_value(values)}")
            continue
        lines.append(f"[{_key(section)}]")
        lines.extend(f"{_key(k)} = {_value(v)}" for k, v in values.items())
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return _string(key)


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(str(value), repr(value))
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
