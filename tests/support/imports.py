"""Read a package's imports with ``ast`` and judge them against the layer table.

Nothing is imported: the source is parsed, so a module with a broken import is still read
and the check cannot be fooled by what happens to be loaded already. Three kinds of import
are told apart, because they matter differently:

- module-level imports run when the module is imported;
- *lazy* imports (inside a function) run later, but still make the importer depend on the
  target: an upward lazy import is still an upward arrow, and it still closes a cycle;
- *type-only* imports (under ``if TYPE_CHECKING:``) never run: they count for layering (the
  importer's code still talks about the other layer) but not for cycles.

The layers come from the table in ``docs/architecture.md`` (see :func:`parse_layers`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

LAYER_TABLE_HEADER = ("layer", "modules", "may import")


@dataclass(frozen=True)
class Import:
    """One import of a module of the tree by another (self-imports are dropped)."""

    importer: str
    target: str
    line: int
    names: tuple[str, ...] = ()  # ``from target import names`` when they are not submodules
    lazy: bool = False
    type_only: bool = False

    def describe(self) -> str:
        how = [word for word, flag in (("lazy", self.lazy), ("type-only", self.type_only)) if flag]
        names = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.importer}:{self.line} -> {self.target}{names}" + (
            f" [{', '.join(how)}]" if how else ""
        )


@dataclass
class ImportGraph:
    """The modules of one package tree and the imports between them."""

    root: Path  # the directory that holds the top-level package
    modules: dict[str, Path] = field(default_factory=dict)  # dotted name -> source file
    packages: set[str] = field(default_factory=set)
    imports: list[Import] = field(default_factory=list)

    def path_of(self, module: str) -> str:
        """The module's file relative to the root, with forward slashes (as the doc writes)."""
        return self.modules[module].relative_to(self.root).as_posix()


# -- reading ------------------------------------------------------------------------------------


def read_imports(root: Path, package: str) -> ImportGraph:
    """Every import between the modules of ``root/package`` (a directory tree of .py files)."""
    graph = ImportGraph(root=root)
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            graph.packages.add(".".join(parts))
        graph.modules[".".join(parts)] = path
    for module, path in graph.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph.imports += _imports_of(graph, module, tree)
    return graph


def _imports_of(graph: ImportGraph, module: str, tree: ast.Module) -> Iterator[Import]:
    for node, lazy, type_only in _walk(tree.body, lazy=False, type_only=False):
        targets: list[tuple[str | None, tuple[str, ...]]]
        if isinstance(node, ast.Import):
            targets = [(_known_prefix(graph, alias.name), ()) for alias in node.names]
        else:
            targets = _from_targets(graph, module, node)
        for target, names in targets:
            if target is not None and target != module:
                yield Import(module, target, node.lineno, names, lazy, type_only)


def _walk(
    body: Iterable[ast.stmt], *, lazy: bool, type_only: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Import statements in ``body``, each with whether it is lazy and whether type-only."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, lazy, type_only
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _walk(node.body, lazy=lazy, type_only=True)
            yield from _walk(node.orelse, lazy=lazy, type_only=type_only)
        else:
            inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from _walk([child], lazy=inner, type_only=type_only)
                elif isinstance(child, ast.ExceptHandler | ast.match_case):
                    yield from _walk(child.body, lazy=inner, type_only=type_only)


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _known_prefix(graph: ImportGraph, dotted: str) -> str | None:
    """The longest prefix of ``dotted`` that is a module of the tree (None: outside it)."""
    parts = dotted.split(".")
    while parts:
        name = ".".join(parts)
        if name in graph.modules:
            return name
        parts.pop()
    return None


def _from_targets(
    graph: ImportGraph, module: str, node: ast.ImportFrom
) -> list[tuple[str | None, tuple[str, ...]]]:
    """``from base import a, b``: a submodule named is its own target; other names the base's."""
    base = _absolute(graph, module, node.level, node.module)
    targets: list[tuple[str | None, tuple[str, ...]]] = []
    plain: list[str] = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in graph.modules:
            targets.append((submodule, ()))
        else:
            plain.append(alias.name)
    if plain:
        targets.append((_known_prefix(graph, base), tuple(plain)))
    return targets


def _absolute(graph: ImportGraph, module: str, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    package = module if module in graph.packages else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{name}" if name else package


# -- layers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layers:
    """The layer table: which files make each layer, and which layers each may import."""

    members: Mapping[str, tuple[str, ...]]  # layer -> paths ("syncd/cli/", "syncd/model.py")
    allowed: Mapping[str, frozenset[str]]  # layer -> the other layers it may import

    def layer_of(self, path: str) -> str | None:
        """The layer whose most specific entry covers ``path`` (a file relative to the root)."""
        best: tuple[int, str] | None = None
        for layer, entries in self.members.items():
            for entry in entries:
                covers = path.startswith(entry) if entry.endswith("/") else path == entry
                if covers and (best is None or len(entry) > best[0]):
                    best = (len(entry), layer)
        return best[1] if best else None

    def packages(self) -> dict[str, str]:
        """Each package entry (``syncd/store/``) as a dotted name, with its layer."""
        return {
            entry.rstrip("/").replace("/", "."): layer
            for layer, entries in self.members.items()
            for entry in entries
            if entry.endswith("/")
        }


def parse_layers(markdown: str) -> Layers:
    """The table whose header is ``| layer | modules | may import |``.

    Cells list backquoted items separated by commas; ``—`` (or nothing) means none. A
    ``modules`` entry ending in ``/`` is a package and everything under it.
    """
    rows: list[list[str]] = []
    in_table = False
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not in_table:
            in_table = line.lstrip().startswith("|") and tuple(cells) == LAYER_TABLE_HEADER
        elif not line.lstrip().startswith("|"):
            break
        elif not all(set(cell) <= set("-: ") for cell in cells):
            rows.append(cells)
    if not rows:
        raise ValueError("no '| layer | modules | may import |' table found")
    members = {_item(row[0]): tuple(_items(row[1])) for row in rows}
    allowed = {_item(row[0]): frozenset(_items(row[2])) for row in rows}
    unknown = {target for targets in allowed.values() for target in targets} - set(members)
    if unknown:
        raise ValueError(f"the layer table allows imports of unknown layers: {sorted(unknown)}")
    return Layers(members, allowed)


def _items(cell: str) -> list[str]:
    return [_item(part) for part in cell.split(",") if _item(part) not in ("", "—")]


def _item(text: str) -> str:
    found = re.findall(r"`([^`]+)`", text)
    return found[0] if found else text.strip()


# -- the checks ---------------------------------------------------------------------------------


def layer_violations(graph: ImportGraph, layers: Layers) -> list[str]:
    """Modules in no layer, and every import of a layer its layer may not import."""
    layer = {module: layers.layer_of(graph.path_of(module)) for module in graph.modules}
    problems = [
        f"{graph.path_of(module)} is in no layer of the table"
        for module, name in layer.items()
        if name is None
    ]
    for imp in graph.imports:
        source, target = layer[imp.importer], layer[imp.target]
        if source is None or target is None or source == target:
            continue
        if target not in layers.allowed[source]:
            problems.append(f"{source} -> {target}: {imp.describe()}")
    return problems


def import_cycles(graph: ImportGraph) -> list[list[str]]:
    """Each strongly connected component of more than one module, over the imports that run.

    Type-only imports are left out (they never run); lazy imports are in.
    """
    edges: dict[str, set[str]] = {module: set() for module in graph.modules}
    for imp in graph.imports:
        if not imp.type_only:
            edges[imp.importer].add(imp.target)
    return sorted(sorted(c) for c in _strongly_connected(edges) if len(c) > 1)


def _strongly_connected(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on a deep chain)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def cycle_edges(graph: ImportGraph, component: Iterable[str]) -> list[str]:
    """The imports that run between the modules of one component (to say how to break it)."""
    members = set(component)
    return [
        imp.describe()
        for imp in graph.imports
        if not imp.type_only and imp.importer in members and imp.target in members
    ]


def declared_surface(graph: ImportGraph, package: str) -> frozenset[str]:
    """The names in ``package/__init__.py``'s ``__all__`` (empty when it has none)."""
    path = graph.modules.get(package)
    if path is None:
        return frozenset()
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                value = node.value
                if isinstance(value, ast.List | ast.Tuple | ast.Set):
                    names |= {
                        e.value
                        for e in value.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    }
    return frozenset(names)


def surface_violations(
    graph: ImportGraph,
    layers: Layers,
    surfaces: Mapping[str, frozenset[str]] | None = None,
) -> list[str]:
    """Imports from another layer's package of something its ``__all__`` does not name.

    ``from pkg.sub import X`` and ``import pkg.sub`` need ``sub`` in ``pkg``'s ``__all__``;
    ``from pkg import X`` needs ``X`` there. Imports within a layer are free. ``surfaces``
    overrides what the ``__init__`` files declare (package -> names).
    """
    packages = layers.packages()
    problems: list[str] = []
    for imp in graph.imports:
        source = layers.layer_of(graph.path_of(imp.importer))
        owner = _owning_package(imp.target, packages)
        if owner is None or packages[owner] == source:
            continue
        surface = (
            surfaces[owner]
            if surfaces is not None and owner in surfaces
            else declared_surface(graph, owner)
        )
        # `from pkg import X` names X; `pkg.sub...` (imported or imported from) names sub.
        submodule = imp.target.split(".")[owner.count(".") + 1 :][:1]
        wanted = imp.names if imp.target == owner else tuple(submodule)
        missing = [name for name in wanted if name not in surface]
        if missing:
            problems.append(
                f"{source} -> {packages[owner]}: {imp.describe()}: "
                f"{', '.join(missing)} not in {owner}.__all__"
            )
    return problems


def _owning_package(module: str, packages: Mapping[str, str]) -> str | None:
    candidates = [p for p in packages if module == p or module.startswith(p + ".")]
    return max(candidates, key=len) if candidates else None
