"""Imports run one way, data <- embeddings <- qa <- api <- evaluation <- cli, with no cycle anywhere.

Every import statement counts, wherever it sits: module level, inside a function, under ``if TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Lower rank = lower layer. training and the benchmark scripts are consumers, like the CLI.
RANKS = {
    "data": 0,
    "embeddings": 1,
    "qa": 2,
    "api": 3,
    "evaluation": 4,
    "training": 5,
    "cli": 6,
    "benchmarks": 7,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in RANKS:
        root = REPO / package
        if root.is_dir():
            for path in sorted(root.rglob("*.py")):
                found[_module_name(path)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """First-party modules ``name`` imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" for alias in node.names] + [module]
        else:
            continue
        for target in targets:
            # The longest known prefix: "qa.types.Answer" -> "qa.types".
            parts = target.split(".")
            while parts and ".".join(parts) not in known:
                parts.pop()
            if parts and ".".join(parts) != name:
                out.add(".".join(parts))
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _rank(module: str) -> int:
    return RANKS[module.split(".")[0]]


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{src} imports {dst}"
        for src, targets in sorted(_graph().items())
        for dst in sorted(targets)
        if _rank(dst) > _rank(src)
    ]
    assert upward == []


def test_the_core_imports_neither_evaluation_nor_api():
    graph = _graph()
    offending = [
        f"{src} imports {dst}"
        for src, targets in graph.items()
        if src.split(".")[0] in ("data", "embeddings", "qa")
        for dst in targets
        if dst.split(".")[0] in ("api", "evaluation", "cli", "training", "benchmarks")
    ]
    assert offending == []


def test_there_is_no_import_cycle():
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


def test_the_walk_sees_every_kind_of_import(tmp_path):
    # Guard against a checker that passes because it reads nothing.
    graph = _graph()
    assert "api.schemas" in graph["evaluation.backends"]
    assert "qa.service" in graph["api.schemas"]
    assert "evaluation.datasets.cmrc2018" in graph["evaluation.datasets"]
    assert "cli.eval" in graph["cli.main"]  # imported inside a function
