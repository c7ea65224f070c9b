"""The documentation stays true to the repository (issue 16).

Every link in README.md and docs/ reaches a file of this repository, no text points outside
it, and every configuration section or key the docs name (in a TOML example or as
``[section] key``) is one the configuration model accepts.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from syncd.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_TOML_BLOCK = re.compile(r"```toml\n(.*?)```", re.DOTALL)
# `[daemon]`, `[daemon] leader_ttl`, `[genesys] profile = "..."`; not output such as `[chaos] seed`
_SECTION_REF = re.compile(r"`\[([a-z_]+)\](?: ([a-z_]+))?(?:`| =)")


def _doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _sections() -> dict[str, set[str]]:
    sections = {}
    for name, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type), name
        assert issubclass(model, BaseModel), name
        sections[name] = set(model.model_fields)
    return sections


def _in_repository(path: Path) -> bool:
    """An existing file or folder of the repository (``../shared`` next to it is not)."""
    resolved = path.resolve()
    return resolved.is_relative_to(ROOT) and resolved.exists()


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_every_link_reaches_a_file_of_the_repository(doc: Path) -> None:
    broken = []
    for target in _LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not _in_repository(doc.parent / target.split("#", 1)[0]):
            broken.append(target)
    assert not broken, f"{_doc_id(doc)} links to what the repository does not hold: {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_no_text_points_outside_the_repository(doc: Path) -> None:
    outside = [
        m.group(0)
        for m in re.finditer(r"(?<![\w/.])\.\./[\w./-]+", doc.read_text(encoding="utf-8"))
        if not _in_repository(doc.parent / m.group(0))
    ]
    assert not outside, f"{_doc_id(doc)} names paths the repository does not hold: {outside}"


@pytest.mark.parametrize("doc", DOCS, ids=_doc_id)
def test_every_configuration_key_named_exists(doc: Path) -> None:
    sections = _sections()
    text = doc.read_text(encoding="utf-8")
    unknown = []
    for block in _TOML_BLOCK.findall(text):
        for section, keys in tomllib.loads(block).items():
            if section not in sections:
                unknown.append(f"[{section}]")
            elif isinstance(keys, dict):
                unknown += [f"[{section}] {k}" for k in keys if k not in sections[section]]
    for section, key in _SECTION_REF.findall(text):
        if section not in sections:
            unknown.append(f"[{section}]")
        elif key and key not in sections[section]:
            unknown.append(f"[{section}] {key}")
    assert not unknown, f"{_doc_id(doc)} names configuration that does not exist: {unknown}"


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """The patterns match the forms the docs use (a check that matches nothing proves nothing)."""
    assert _LINK.findall("see [ops](operations.md#state)") == ["operations.md#state"]
    assert _SECTION_REF.findall("`[daemon] leader_ttl`, `[metrics]`, `[genesys] profile = 1`") == [
        ("daemon", "leader_ttl"),
        ("metrics", ""),
        ("genesys", "profile"),
    ]
    assert _SECTION_REF.findall("`[chaos] kill -9 chaos: seed 1`") == []
    assert "leader_ttl" in _sections()["daemon"]
    assert not _in_repository(ROOT / "docs" / "../shared/reference/facts.md")
    assert _in_repository(ROOT / "docs" / "../README.md")
    assert sum(len(_TOML_BLOCK.findall(d.read_text(encoding="utf-8"))) for d in DOCS) >= 3
