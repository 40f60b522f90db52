"""The architecture holds: imports point down the layers of ARCHITECTURE.md, no import cycles, small files.

Every import counts, at module level or inside a function (moving an import into a function hides a cycle,
it does not remove it); only imports under ``if TYPE_CHECKING:`` are left out, since they never run.
``service/`` ships as ``spikedet.service``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Top to bottom: a module may import its own layer's modules (without cycles) and any layer below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("entry points", ("spikedet.cli", "spikedet.__main__")),
    ("live demo", ("spikedet.webcam",)),
    ("service", ("spikedet.service",)),
    ("detector", ("spikedet.detector",)),
    ("measure", ("spikedet.measure",)),
    ("convert", ("spikedet.convert",)),
    ("engine", ("spikedet.engine",)),
    ("io", ("spikedet.io",)),
    ("model", ("spikedet.model",)),
    ("nn", ("spikedet.nn",)),
    ("snn", ("spikedet.snn",)),
    (
        "base",
        (
            "spikedet.assets",
            "spikedet.errors",
            "spikedet.offline",
            "spikedet.compat",
            "spikedet.progress",
            "spikedet.backends",
            "spikedet.integer_reference",
            "spikedet",  # the package's own __init__ only (see layer_of)
        ),
    ),
]


def module_files() -> dict[str, Path]:
    files = {}
    for package, folder in (("spikedet", ROOT / "spikedet"), ("spikedet.service", ROOT / "service")):
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts))
            files[name.removesuffix(".__init__")] = path
    return files


def _typing_only(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def import_graph() -> dict[str, set[str]]:
    """Module -> the spikedet modules it imports (a package's ``__init__`` counts as the package)."""
    files = module_files()
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skipped = _typing_only(tree)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if id(node) in skipped or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = name.split(".") if is_package else name.split(".")[:-1]
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                # importing one's own parent package is how Python loads a submodule, not a dependency
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> int:
    """The layer index of a module (0 = top): the layer whose prefix matches it most closely."""
    best, length = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            # the bare package name is the package's own __init__ only: a module of no listed layer fails
            nested = prefix != "spikedet" and module.startswith(prefix + ".")
            if (module == prefix or nested) and len(prefix) > length:
                best, length = i, len(prefix)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS and ARCHITECTURE.md")
    return best


GRAPH = import_graph()


def test_the_graph_sees_the_package():
    # a sanity check on the parser itself: known edges are there
    assert "spikedet.snn.code" in GRAPH["spikedet.snn.spikes"]
    assert "spikedet.measure.energy" in GRAPH["spikedet.detector"]
    assert "spikedet.service.settings" in GRAPH["spikedet.service.app"]


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_cycle_finder_finds_a_planted_cycle():
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(planted) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module):
    upward = [t for t in sorted(GRAPH[module]) if layer_of(t) < layer_of(module)]
    assert not upward, f"{module} ({LAYERS[layer_of(module)][0]}) imports upward: {upward}"


def test_a_module_of_no_layer_is_reported():
    with pytest.raises(AssertionError, match="belongs to no layer"):
        layer_of("spikedet.somewhere_new")


def test_every_layer_is_in_architecture_md():
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for _, prefixes in LAYERS:
        for prefix in prefixes:
            if prefix != "spikedet":
                assert prefix.removeprefix("spikedet.").split(".")[0] in text, prefix


@pytest.mark.parametrize("path", sorted(module_files().values()), ids=lambda p: str(p.relative_to(ROOT)))
def test_source_files_stay_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 500, f"{path.relative_to(ROOT)} has {lines} lines (limit 500): split it by concern"
