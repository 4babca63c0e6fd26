"""The package's floors (docs/ARCHITECTURE.md): each unit imports only units on lower floors, there is no
import circle, and xaikit's own modules are imported at the top of files (a function-level import hides
the dependency graph; only heavy optional third-party packages may be imported lazily).

Measured by parsing every module with ``ast``: every ``import``/``from ... import`` of an xaikit module,
at any depth, is an edge between the two units (first component under ``xaikit``)."""
import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "xaikit"

#: floor of each unit (a subpackage or a top-level module of xaikit); a unit imports only lower floors
FLOORS = {
    "errors": 0, "config": 1, "core": 2, "data": 3, "published": 3, "models": 4, "attributors": 5,
    "streams": 5, "metrics": 6, "training": 6, "reports": 7, "experiments": 8, "profiles": 9, "preflight": 10,
    "run": 11,
}


def _modules():
    for p in sorted(ROOT.rglob("*.py")):
        rel = p.relative_to(ROOT).with_suffix("")
        mod = ".".join(("xaikit",) + rel.parts)
        if p.name == "__init__.py":
            mod = mod[: -len(".__init__")]
        yield p, mod


def _unit(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports(path: Path, mod: str):
    """(target module, line, at top level?) of every xaikit import in a file."""
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    top = set(id(n) for n in tree.body)
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("xaikit"):
                continue
            if node.module is None or target == "xaikit":  # from . import x / from .. import x
                targets = [f"{target}.{a.name}" for a in node.names]
            else:
                targets = [target]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.startswith("xaikit")]
        for t in targets:
            yield t, node.lineno, id(node) in top


def _edges():
    out = []
    for path, mod in _modules():
        for target, line, top in _imports(path, mod):
            out.append((mod, target, line, top, path))
    return out


EDGES = _edges()


def test_every_unit_has_a_floor():
    units = {_unit(m) for _, m in _modules()} - {None, "__main__"}
    assert units <= set(FLOORS), f"units without a floor: {sorted(units - set(FLOORS))} (add them to FLOORS and ARCHITECTURE.md)"


def test_no_import_runs_back_up():
    bad = []
    for mod, target, line, _, path in EDGES:
        u, v = _unit(mod), _unit(target)
        if u is None or v is None or u == v or v == "__version__" or u == "__main__":
            continue
        if FLOORS.get(v, -1) >= FLOORS.get(u, 99):
            bad.append(f"{path.relative_to(ROOT.parent)}:{line}: {u} (floor {FLOORS.get(u)}) imports {target} "
                       f"(floor {FLOORS.get(v)})")
    assert not bad, "imports that run up or sideways:\n" + "\n".join(bad)


def test_no_import_circle_between_modules():
    graph = defaultdict(set)
    names = {m for _, m in _modules()}
    for mod, target, _, top, _ in EDGES:
        t = target
        while t not in names and "." in t:
            t = t.rsplit(".", 1)[0]
        if t in names and t != mod and top:
            graph[mod].add(t)
    # Tarjan-free check: DFS for a back edge
    state, cycles = {}, []

    def visit(n, stack):
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m] if m in stack else [n, m])
            elif m not in state:
                visit(m, stack + [m])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    # a package importing its own submodules in __init__ is not a circle
    cycles = [c for c in cycles if not all(x.startswith(c[0]) or c[0].startswith(x) for x in c)]
    assert not cycles, f"import circles: {cycles}"


def test_xaikit_modules_are_imported_at_the_top():
    lazy = [f"{path.relative_to(ROOT.parent)}:{line}: {target}" for mod, target, line, top, path in EDGES
            if not top and not mod == "xaikit"]
    assert not lazy, f"{len(lazy)} imports of xaikit modules inside functions:\n" + "\n".join(lazy)
