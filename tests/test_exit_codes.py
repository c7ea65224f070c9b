"""The README's exit-code table and :class:`syncd.exit_codes.ExitCode` say the same thing.

Operators read the table; the commands return the enum. Each is held against the other both
ways, so a code added, renumbered or removed on one side fails here until the other follows.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from syncd.exit_codes import ExitCode

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
HEADER = ("code", "name", "meaning", "returned by")


@dataclass(frozen=True)
class Row:
    code: int
    name: str
    meaning: str
    commands: str


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def readme_table(text: str) -> list[Row]:
    """The rows of the table under the README's ``## Exit codes`` heading."""
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert lines, "the Exit codes section of README.md has no table"
    assert tuple(_cells(lines[0])) == HEADER, f"unexpected header: {lines[0]}"
    assert re.fullmatch(r"\|(\s*-+\s*\|)+", lines[1].replace(" ", "")), lines[1]
    rows = []
    for line in lines[2:]:
        code, name, meaning, commands = _cells(line)
        rows.append(Row(int(code), name.strip("`"), meaning, commands))
    return rows


def test_the_readme_table_is_parsed() -> None:
    rows = readme_table(
        "# x\n\n## Exit codes\n\ntext\n\n"
        "| code | name | meaning | returned by |\n|---|---|---|---|\n"
        "| 0 | `OK` | done | every command |\n\n## Next\n\n| 9 | `NOT` | in the table | x |\n"
    )
    assert rows == [Row(0, "OK", "done", "every command")]


def test_every_member_is_in_the_readme_table_with_its_number() -> None:
    rows = {row.name: row for row in readme_table(README.read_text(encoding="utf-8"))}
    missing = [member.name for member in ExitCode if member.name not in rows]
    assert not missing, f"ExitCode members missing from README.md's table: {missing}"
    wrong = {m.name: rows[m.name].code for m in ExitCode if rows[m.name].code != m.value}
    assert not wrong, f"README.md gives these members other numbers: {wrong}"


def test_every_readme_row_is_a_member() -> None:
    rows = readme_table(README.read_text(encoding="utf-8"))
    strangers = [(r.code, r.name) for r in rows if r.name not in ExitCode.__members__]
    assert not strangers, f"README.md lists exit codes that ExitCode does not have: {strangers}"
    assert [r.code for r in rows] == sorted({r.code for r in rows}), "one row per code, in order"
    assert all(r.meaning and r.commands for r in rows), "every row says what and where"


def _exit_numbers(path: Path) -> Iterator[str]:
    """Exit statuses written as numbers or as constants of their own, outside the enum."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = target.id if isinstance(target, ast.Name) else None
                if name and name.startswith("EXIT_"):
                    yield f"{where}: constant {name}"
                if name == "exit_code" and isinstance(node.value, ast.Constant):
                    yield f"{where}: exit_code = {node.value.value!r}"
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("exit", "Exit") and isinstance(node.args[0].value, int):
                yield f"{where}: {name}({node.args[0].value})"


def test_no_exit_status_is_spelled_outside_the_enum() -> None:
    found = [
        problem
        for path in sorted((ROOT / "syncd").rglob("*.py"))
        if path.name != "exit_codes.py"
        for problem in _exit_numbers(path)
    ]
    assert not found, "use syncd.exit_codes.ExitCode instead:\n" + "\n".join(found)
