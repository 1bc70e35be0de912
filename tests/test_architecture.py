"""The shape of the code: toolkit/'s import graph has no circle, and no module imports from a layer
above its own — except the console entry, which starts the command line (docs/architecture.md).

The graph is built from the source (ast), with every static import: at module level, inside
functions (the lazy imports of heavy libraries and of higher rooms alike) and under TYPE_CHECKING.
A new module must be given its layer below; the test says so when one is missing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "toolkit"

# Lowest first. A module may import its own layer and those below (without a circle), never above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # plain helpers and the format definition: templates/*.toml → Format
    ("base", ("toolkit", "toolkit.errors", "toolkit.textnum", "toolkit.fileio", "toolkit.pool", "toolkit.spec", "toolkit.entry")),
    # the workbook file itself — zip guard, package parts, the careful and the fast scan (toolkit/xlsx/);
    # xlsx_rows writes rows for the summary
    ("workbook files", ("toolkit.xlsx", "toolkit.xlsx_rows")),
    # plain data: the roster, a Report and its findings (and their JSON), the layout of a format, the catalogue
    (
        "model",
        (
            "toolkit.roster",
            "toolkit.findings",
            "toolkit.report",
            "toolkit.codec",
            "toolkit.layout",
            "toolkit.catalogue",
            "toolkit.synth",
        ),
    ),
    # inputs → Report
    ("readers", ("toolkit.inputs", "toolkit.reader")),
    # Report → findings
    ("rules", ("toolkit.rules", "toolkit.years", "toolkit.aliases", "toolkit.diff", "toolkit.check")),
    ("consolidate", ("toolkit.consolidate",)),
    # Reports and summaries → files; published reports (import, audit) and written drafts
    (
        "writers",
        (
            "toolkit.template",
            "toolkit.annotate",
            "toolkit.summary_writer",
            "toolkit.jsonout",
            "toolkit.outputs",
            "toolkit.published",
            "toolkit.draft",
        ),
    ),
    ("api", ("toolkit.api",)),
    ("archive", ("toolkit.archive",)),
    ("web", ("toolkit.web",)),
    ("cli", ("toolkit.cli",)),
]

# The console entry installs its signal handlers with the standard library only, then runs the command
# line: the one import up the layers (and so the one edge that would otherwise close a circle).
ALLOWED_UP = {("toolkit.entry", "toolkit.cli")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _targets(module: str, node: ast.Import | ast.ImportFrom, is_package: bool, known: dict[str, Path]) -> set[str]:
    """The toolkit modules an import statement names (``from . import x``: the submodule x)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            here = module.split(".") if is_package else module.split(".")[:-1]
            here = here[: len(here) - (node.level - 1)]
            base = ".".join(here + ([node.module] if node.module else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith("toolkit") and name != module:
            out.add(name)
    return out


def _is_type_checking(node: ast.AST) -> bool:
    """An ``if TYPE_CHECKING:`` block: its imports never run (names for annotations only)."""
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def import_graph() -> dict[str, set[str]]:
    known = _modules()
    graph = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block) for n in ast.walk(block)}
        imports = (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in typing_only)
        graph[module] = set().union(*(_targets(module, n, path.name == "__init__.py", known) for n in imports))
    return graph


def layer_of(module: str) -> int | None:
    best, found = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            inside = p != "toolkit" and module.startswith(p + ".")  # the root package is only itself
            if (module == p or inside) and len(p) > best:
                best, found = len(p), i
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_module_has_a_layer(graph):
    assert [m for m in sorted(graph) if layer_of(m) is None] == [], "give the new module its layer in LAYERS"


def test_no_import_from_a_lower_layer_to_a_higher_one(graph):
    up = []
    for module, targets in sorted(graph.items()):
        mine = layer_of(module)
        for t in sorted(targets):
            theirs = layer_of(t)
            if mine is not None and theirs is not None and theirs > mine and (module, t) not in ALLOWED_UP:
                up.append(f"{module} ({LAYERS[mine][0]}) imports {t} ({LAYERS[theirs][0]})")
    assert up == []


def test_no_import_circle(graph):
    without_entry = {m: {t for t in ts if (m, t) not in ALLOWED_UP} for m, ts in graph.items()}
    assert circles(without_entry) == []


def test_the_graph_sees_function_level_imports(graph):
    """A function-level import counts like any other (otherwise a circle could hide inside a
    function), and ``circles`` finds a circle when there is one."""
    assert "toolkit.cli" in graph["toolkit.entry"]  # `from .cli import main` inside main()
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
