"""The layering of ``syncd/`` as ``docs/architecture.md`` states it, checked on every run.

The doc's layer table is the single source of truth: the tests read it, read the imports of
``syncd/`` with ``ast`` (see :mod:`tests.support.imports`) and fail on any arrow it does not
allow and on any import cycle. The synthetic trees below show that the checks catch what
they are meant to catch, so a green run means something.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.support.imports import (
    Import,
    Layers,
    cycle_edges,
    import_cycles,
    layer_violations,
    parse_layers,
    read_imports,
    surface_violations,
)

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def doc_layers() -> Layers:
    return parse_layers(ARCHITECTURE.read_text(encoding="utf-8"))


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return root


def bullet_list(lines: list[str]) -> str:
    return "\n".join(f"  {line}" for line in lines)


# -- the real tree ------------------------------------------------------------------------------


def test_every_import_of_syncd_is_an_arrow_the_doc_allows() -> None:
    problems = layer_violations(read_imports(ROOT, "syncd"), doc_layers())
    assert not problems, (
        "imports that the layer table of docs/architecture.md forbids:\n" + bullet_list(problems)
    )


def test_syncd_has_no_import_cycle() -> None:
    graph = read_imports(ROOT, "syncd")
    cycles = import_cycles(graph)
    report = [
        f"{' <-> '.join(cycle)}\n" + bullet_list(cycle_edges(graph, cycle)) for cycle in cycles
    ]
    assert not cycles, "import cycles (imports that run, lazy included):\n" + "\n".join(report)


def test_layers_import_only_each_others_public_surface() -> None:
    problems = surface_violations(read_imports(ROOT, "syncd"), doc_layers())
    assert not problems, "imports of what a layer's __all__ does not name:\n" + bullet_list(
        problems
    )


def test_the_layer_table_is_read_from_the_doc() -> None:
    layers = doc_layers()
    assert set(layers.members) == {
        "main",
        "cli",
        "daemon",
        "sync",
        "store",
        "genesys",
        "emulator",
        "base",
    }
    assert layers.layer_of("syncd/sync/engine.py") == "sync"
    assert layers.layer_of("syncd/__init__.py") == "base"
    assert layers.layer_of("syncd/new_module.py") is None
    assert "daemon" in layers.allowed["cli"]
    assert "cli" not in layers.allowed["daemon"]
    assert not {"daemon", "cli", "emulator"} & layers.allowed["sync"]
    assert layers.allowed["base"] == frozenset()


# -- the checker on synthetic trees -------------------------------------------------------------

FAKE_LAYERS = """
Some prose first.

| layer | modules | may import |
|---|---|---|
| `daemon` | `fakepkg/daemon/` | `sync`, `store`, `base` |
| `sync` | `fakepkg/sync/` | `store`, `base` |
| `store` | `fakepkg/store/` | `base` |
| `base` | `fakepkg/__init__.py`, `fakepkg/model.py` | — |

Prose after the table is not part of it.
"""

CLEAN_TREE = {
    "fakepkg/__init__.py": "",
    "fakepkg/model.py": "import json\n",
    "fakepkg/daemon/__init__.py": "",
    "fakepkg/daemon/y.py": """
        from fakepkg.sync import typed
        from fakepkg.model import *

        class Y: ...
    """,
    "fakepkg/sync/__init__.py": '__all__ = ["typed"]\n',
    "fakepkg/sync/a.py": """
        from fakepkg import model

        def g() -> None: ...
    """,
    "fakepkg/sync/b.py": """
        from .a import g
        from ..store import Database
    """,
    "fakepkg/sync/typed.py": """
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from fakepkg.sync.a import g
    """,
    "fakepkg/store/__init__.py": """
        from fakepkg.store.db import Database

        __all__ = ["Database", "ledger"]
    """,
    "fakepkg/store/db.py": "class Database: ...\n",
    "fakepkg/store/ledger.py": "from fakepkg.store import db\n\nclass Entry: ...\n",
    "fakepkg/store/links.py": "class Link: ...\n",
}


def test_a_clean_tree_reports_nothing(tmp_path: Path) -> None:
    graph = read_imports(write_tree(tmp_path, CLEAN_TREE), "fakepkg")
    layers = parse_layers(FAKE_LAYERS)
    assert layer_violations(graph, layers) == []
    assert import_cycles(graph) == []
    assert surface_violations(graph, layers) == []
    # Relative imports and `from package import submodule` resolve to the module imported.
    assert Import("fakepkg.sync.b", "fakepkg.sync.a", 2, ("g",)) in graph.imports
    assert Import("fakepkg.sync.b", "fakepkg.store", 3, ("Database",)) in graph.imports
    assert Import("fakepkg.sync.a", "fakepkg.model", 2) in graph.imports


def test_forbidden_arrows_are_reported_lazy_and_type_only_included(tmp_path: Path) -> None:
    tree = {
        **CLEAN_TREE,
        "fakepkg/sync/x.py": "from fakepkg.daemon.y import Y\n",
        "fakepkg/sync/typed.py": """
            from typing import TYPE_CHECKING

            if TYPE_CHECKING:
                from ..daemon import y
        """,
        "fakepkg/store/links.py": """
            class Link:
                def upward(self) -> None:
                    import fakepkg.sync.a
        """,
        "fakepkg/stray.py": "",
    }
    graph = read_imports(write_tree(tmp_path, tree), "fakepkg")
    assert layer_violations(graph, parse_layers(FAKE_LAYERS)) == [
        "fakepkg/stray.py is in no layer of the table",
        "store -> sync: fakepkg.store.links:4 -> fakepkg.sync.a [lazy]",
        "sync -> daemon: fakepkg.sync.typed:5 -> fakepkg.daemon.y [type-only]",
        "sync -> daemon: fakepkg.sync.x:1 -> fakepkg.daemon.y (Y)",
    ]
    # daemon.y -> sync.typed -> daemon.y only through a type-only import: not a cycle.
    assert import_cycles(graph) == []


def test_a_cycle_through_a_lazy_import_is_reported(tmp_path: Path) -> None:
    tree = {
        **CLEAN_TREE,
        "fakepkg/sync/a.py": """
            def g() -> None:
                from fakepkg.sync.b import Database
        """,
        "fakepkg/sync/self_import.py": "import fakepkg.sync.self_import\n",
    }
    graph = read_imports(write_tree(tmp_path, tree), "fakepkg")
    assert import_cycles(graph) == [["fakepkg.sync.a", "fakepkg.sync.b"]]
    assert cycle_edges(graph, ["fakepkg.sync.a", "fakepkg.sync.b"]) == [
        "fakepkg.sync.a:3 -> fakepkg.sync.b (Database) [lazy]",
        "fakepkg.sync.b:2 -> fakepkg.sync.a (g)",
    ]


def test_only_the_declared_surface_may_cross_a_layer(tmp_path: Path) -> None:
    tree = {
        **CLEAN_TREE,
        "fakepkg/sync/x.py": """
            import fakepkg.store
            import fakepkg.store.links
            from fakepkg.store import Database, metadata
            from fakepkg.store.ledger import Entry
            from fakepkg.store.links import Link
        """,
    }
    graph = read_imports(write_tree(tmp_path, tree), "fakepkg")
    layers = parse_layers(FAKE_LAYERS)
    assert surface_violations(graph, layers) == [
        "sync -> store: fakepkg.sync.x:3 -> fakepkg.store.links: "
        "links not in fakepkg.store.__all__",
        "sync -> store: fakepkg.sync.x:4 -> fakepkg.store (Database, metadata): "
        "metadata not in fakepkg.store.__all__",
        "sync -> store: fakepkg.sync.x:6 -> fakepkg.store.links (Link): "
        "links not in fakepkg.store.__all__",
    ]
    # An empty surface: every import from another layer is reported, none within one
    # (x.py: 4, b.py's Database, daemon.y's typed; not store.ledger's import of db).
    empty = {"fakepkg.store": frozenset[str](), "fakepkg.sync": frozenset[str]()}
    assert len(surface_violations(graph, layers, empty)) == 6


def test_the_doc_table_catches_an_upward_import_added_to_syncd(tmp_path: Path) -> None:
    """The real rule, on a synthetic ``syncd``: one lazy upward import turns it red."""
    tree = {
        "syncd/__init__.py": "",
        "syncd/__main__.py": "from syncd.cli import main\n",
        "syncd/cli/__init__.py": "from syncd.daemon import service\n\ndef main() -> None: ...\n",
        "syncd/daemon/__init__.py": "",
        "syncd/daemon/service.py": "from syncd.store import db\n",
        "syncd/store/__init__.py": "",
        "syncd/store/db.py": "from syncd.errors import DatabaseError\n",
        "syncd/errors.py": "class DatabaseError(Exception): ...\n",
        "syncd/sync/__init__.py": "",
        "syncd/sync/runs.py": "from syncd.store import db\n",
    }
    root = write_tree(tmp_path, tree)
    assert layer_violations(read_imports(root, "syncd"), doc_layers()) == []
    write_tree(
        root,
        {
            "syncd/sync/runs.py": """
                from syncd.store import db

                def outcome() -> None:
                    from syncd.daemon.service import db as _
            """
        },
    )
    assert layer_violations(read_imports(root, "syncd"), doc_layers()) == [
        "sync -> daemon: syncd.sync.runs:5 -> syncd.daemon.service (db) [lazy]"
    ]


def test_a_doc_without_the_table_or_with_an_unknown_layer_is_an_error() -> None:
    with pytest.raises(ValueError, match=re.escape("no '| layer | modules | may import |' table")):
        parse_layers("# Architecture\n\nNo table here.\n")
    with pytest.raises(ValueError, match="unknown layers: \\['nowhere'\\]"):
        parse_layers(FAKE_LAYERS.replace("`store`, `base` |\n| `sync`", "`nowhere` |\n| `sync`"))
