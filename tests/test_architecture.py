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
    # plain helpers and the format definition: templates/*.toml → Format, and its rules' expression language
    (
        "base",
        (
            "toolkit",
            "toolkit.errors",
            "toolkit.textnum",
            "toolkit.fileio",
            "toolkit.pool",
            "toolkit.spec",
            "toolkit.expr",
            "toolkit.entry",
        ),
    ),
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
            "toolkit.online",
        ),
    ),
    ("archive", ("toolkit.archive",)),
    # the public seam: the library's operations, and every other name the web and the command line use
    ("api", ("toolkit.api",)),
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


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def api_public() -> dict[str, str]:
    """toolkit/api.py's ``PUBLIC`` table (name → "module" or "module:attribute"), read from the source."""
    for node in _tree(ROOT / "api.py").body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "PUBLIC":
            return ast.literal_eval(node.value)  # type: ignore[arg-type]
    raise AssertionError("toolkit/api.py has no PUBLIC table")


def _lazy_targets(known: dict[str, Path]) -> set[str]:
    """The modules toolkit/api.py loads on first use (its PUBLIC table): imports like any other."""
    out = set()
    for where in api_public().values():
        name = "toolkit." + where.partition(":")[0]
        while name not in known:
            name = name.rpartition(".")[0]
        out.add(name)
    return out


def import_graph() -> dict[str, set[str]]:
    known = _modules()
    graph = {}
    for module, path in known.items():
        tree = _tree(path)
        typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block) for n in ast.walk(block)}
        imports = (n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in typing_only)
        graph[module] = set().union(*(_targets(module, n, path.name == "__init__.py", known) for n in imports))
    graph["toolkit.api"] |= _lazy_targets(known) - {"toolkit.api"}
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


# ---------------------------------------------------------------- the public seam

# What the command line and the web page may import of the library: the public seam (toolkit/api.py), the
# errors, and their own package. Besides: the console entry and the version (the command line starts
# there), and for ``nianbao serve``/``links`` (toolkit/cli/web.py) the web package it starts and configures.
SEAM = {"toolkit.api", "toolkit.errors"}
ALLOWED = {
    "toolkit.cli": SEAM | {"toolkit", "toolkit.entry"},
    "toolkit.web": SEAM,
}
ALLOWED_PACKAGE = {"toolkit.cli.web": "toolkit.web"}


def _outside_the_seam(graph: dict[str, set[str]], package: str) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        if module != package and not module.startswith(package + "."):
            continue
        extra = ALLOWED_PACKAGE.get(module, package)
        for t in sorted(targets):
            if t not in ALLOWED[package] and t != package and not t.startswith(package + ".") and not t.startswith(extra):
                out.append(f"{module} imports {t}")
    return out


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_cli_and_web_import_only_the_public_seam(graph, package):
    """The command line and the web page parse, call the library through toolkit/api.py and render:
    a name they need is added to api (its PUBLIC table when it is already the right public shape)."""
    assert _outside_the_seam(graph, package) == []


def test_seam_check_can_fail():
    graph = {"toolkit.cli.x": {"toolkit.api", "toolkit.jsonout"}, "toolkit.web.y": {"toolkit.web.keys", "toolkit.archive"}}
    assert _outside_the_seam(graph, "toolkit.cli") == ["toolkit.cli.x imports toolkit.jsonout"]
    assert _outside_the_seam(graph, "toolkit.web") == ["toolkit.web.y imports toolkit.archive"]


def _api_names() -> set[str]:
    """Every name toolkit/api.py defines or imports at module level, and the names of its PUBLIC table."""
    names = set(api_public())
    for node in _tree(ROOT / "api.py").body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_every_name_taken_from_the_api_is_there():
    """``from ..api import x`` (or ``api.x`` after ``from .. import api``) names something api defines or
    loads (PUBLIC), and every PUBLIC entry resolves: a typo fails here, not when a clerk runs the one
    command that uses it."""
    import toolkit.api as api

    names, missing = _api_names(), []
    for path in [*(ROOT / "cli").glob("*.py"), *(ROOT / "web").glob("*.py")]:
        tree = _tree(path)
        as_module = any(
            isinstance(n, ast.ImportFrom) and n.level == 2 and not n.module and any(a.name == "api" for a in n.names)
            for n in ast.walk(tree)
        )
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "api" and node.level == 2:
                missing += [f"{path.name}: {a.name}" for a in node.names if a.name not in names]
            elif as_module and isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "api":
                missing += [f"{path.name}: api.{node.attr}"] if node.attr not in names else []
    assert missing == []
    for name in api_public():
        assert getattr(api, name) is not None, name


def test_the_seam_stays_lazy():
    """``nianbao --help`` loads none of the library behind the seam (the api itself is a table), so
    that it and ``--version`` stay quick — checked in a fresh interpreter by the modules loaded, not by time."""
    import subprocess
    import sys

    code = (
        "import sys; from toolkit.cli import run; run(['--help']); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('toolkit'))), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stderr.split()
    assert "toolkit.cli.app" in loaded
    heavy = {"toolkit.check", "toolkit.archive", "toolkit.reader", "toolkit.spec", "toolkit.web", "toolkit.consolidate"}
    assert heavy.isdisjoint(loaded), loaded


# ---------------------------------------------------------------- format-derived data lives on the format

# Module-level containers that are filled while running. Format-derived data (compiled rules, layouts,
# lookups by format id) belongs on the format's model (``cached_property`` on ``Format``/``Sheet``), so
# each entry below is a memo of something else, with the reason it is not format data.
MODULE_STATE = {
    "toolkit.fileio.WRITTEN": "outputs finished by this process (an interrupted command names them)",
    "toolkit.fileio.STAGING": "staging folders in use (removed on Ctrl-C)",
    "toolkit.inputs._INNER": "the nested zip archive read last (members come in order)",
    "toolkit.cli.app.PLANNED": "the outputs a command announced (named when interrupted)",
    "toolkit.cli.app.DONE": "the outputs a command finished",
    "toolkit.cli.app._SIGNALLED": "the signal that stopped the command (exit code)",
    "toolkit.published.source._CONVERTERS": "OpenCC converters, by configuration name",
    "toolkit.xlsx.guard._INFLATED": "inflated zip members, by their compressed bytes",
    "toolkit.xlsx.guard._DERIVED": "parts most returns share, by their exact bytes",
    "toolkit.xlsx.fast._COLUMNS": "column letters → numbers (at most 18,278)",
    "toolkit.xlsx.fast._CODES": "cell attribute spellings → how to read the value, by the book's styles",
    "toolkit.xlsx.fast._SKELETONS": "worksheet skeletons, by the bytes of the part",
}
_EMPTY_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "WeakKeyDictionary", "WeakValueDictionary"}


def _is_empty_container(value: ast.expr | None) -> bool:
    if isinstance(value, (ast.Dict, ast.List, ast.Set)):
        return not getattr(value, "keys", None) and not getattr(value, "elts", None)
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return name in _EMPTY_CALLS and not value.args
    return False


def module_state(source: str, module: str) -> list[str]:
    """The module-level names bound to an empty dict/list/set (or such a call): filled at run time."""
    out = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if _is_empty_container(getattr(node, "value", None)):
            out += [f"{module}.{t.id}" for t in targets if isinstance(t, ast.Name)]
    return out


def test_no_module_level_cache_of_format_data():
    found = []
    for module, path in sorted(_modules().items()):
        found += module_state(path.read_text(encoding="utf-8"), module)
    assert sorted(set(found) - set(MODULE_STATE)) == [], "put format-derived data on the format (cached_property)"
    assert sorted(set(MODULE_STATE) - set(found)) == [], "an entry of MODULE_STATE that is gone: remove it"


# Functions memoised per process (functools.cache) by a format id: the same data by another door. Loaders of
# a file of their own are fine; what is derived from the Format belongs on it. The entries left here are
# known and wait to move (a per-format memo on Format that higher layers can fill, without importing up).
FORMAT_MEMOS = {
    "toolkit.aliases.aliases": "loads templates/aliases/<format>.toml (a file of its own, like formats())",
    "toolkit.draft.build.wording": "loads templates/wording.toml (a file of its own)",
    "toolkit.published.tokens.lexicon": "derived from the format's labels: to move onto the format",
    "toolkit.published.walk._constraints": "derived from the format's totals and rules: to move onto the format",
    "toolkit.published.walk._bounds": "derived from the format's rules: to move onto the format",
}
_FORMAT_ARGS = {"fmt", "fmt_id", "format_id"}


def _memoised(node: ast.AST) -> bool:
    def name(d: ast.expr) -> str:
        d = d.func if isinstance(d, ast.Call) else d
        return d.id if isinstance(d, ast.Name) else d.attr if isinstance(d, ast.Attribute) else ""

    return isinstance(node, ast.FunctionDef) and any(name(d) in ("cache", "lru_cache") for d in node.decorator_list)


def format_memos(source: str, module: str) -> list[str]:
    """Module-level functions memoised per process that take a format (or its id)."""
    return [
        f"{module}.{node.name}"
        for node in ast.parse(source).body
        if _memoised(node) and _FORMAT_ARGS & {a.arg for a in node.args.args}  # type: ignore[attr-defined]
    ]


def test_no_new_memo_of_format_data_by_format_id():
    found = []
    for module, path in sorted(_modules().items()):
        found += format_memos(path.read_text(encoding="utf-8"), module)
    assert sorted(set(found) - set(FORMAT_MEMOS)) == [], "put format-derived data on the format (cached_property)"
    assert sorted(set(FORMAT_MEMOS) - set(found)) == [], "an entry of FORMAT_MEMOS that is gone: remove it"
    src = "@functools.lru_cache(maxsize=9)\ndef f(fmt_id, x): ...\n@cache\ndef g(label): ...\n"
    assert format_memos(src, "m") == ["m.f"]


def test_the_public_package_is_the_api():
    """``import nianbao`` hands out the api's names (and the version): one list of what is public."""
    tree = _tree(ROOT.parent / "nianbao" / "__init__.py")
    sources = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert sources <= {"__future__", "toolkit", "toolkit.api"}, sources
    import nianbao
    import toolkit.api as api

    assert [n for n in nianbao.__all__ if n != "__version__" and getattr(nianbao, n) is not getattr(api, n)] == []


def test_module_state_scan_can_fail():
    src = "_COMPILED: dict[str, list] = {}\nX = {'a': 1}\n_M = dict()\ndef f():\n    y = {}\n"
    assert module_state(src, "m") == ["m._COMPILED", "m._M"]
