"""The house rules of docs/design.md, checked on the package's source: floors only import downwards, serve/ writes
no SQL, the import graph has no loop, the pure fusion module imports without pyarrow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "polyseek"
LOWER_FLOORS = ("ingest", "encode", "store", "retrieve")


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every polyseek module `path` imports, at module level or inside functions (TYPE_CHECKING included)."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("polyseek"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("polyseek"):
                continue
            out.add(target)
            for a in node.names:  # `from . import keyword` imports a module
                if (PKG.parent / (target.replace(".", "/") + "/" + a.name + ".py")).exists() or \
                        (PKG.parent / (target.replace(".", "/") + "/" + a.name)).is_dir():
                    out.add(f"{target}.{a.name}")
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PKG.rglob("*.py")}
    g = {}
    for name, path in files.items():
        g[name] = {t for t in imports_of(path) if t in files and t != name}
    return g


def test_lower_floors_never_import_the_facade_the_run_or_serve():
    bad = []
    for name, targets in graph().items():
        if name.split(".")[1:2] and name.split(".")[1] in LOWER_FLOORS:
            for t in targets:
                if t in ("polyseek.index", "polyseek.indexer") or t.startswith("polyseek.serve"):
                    bad.append(f"{name} -> {t}")
    assert not bad, bad


def test_serve_writes_no_sql_and_leaves_the_store_module_alone():
    bad = []
    for p in (PKG / "serve").rglob("*.py"):
        src = p.read_text()
        for t in imports_of(p):
            if t in ("polyseek.store.lance", "polyseek.store.sql"):
                bad.append(f"{p.name} imports {t}")
        for needle in (" IN (", "sql_in", "WHERE ", "where=", "count_rows("):
            if needle in src:
                bad.append(f"{p.name} contains {needle!r}")
    assert not bad, bad


def test_the_import_graph_has_no_loop():
    g = graph()
    # Package __init__ files only re-export: an edge into a package's own __init__ from below is not a loop
    # of responsibilities, so loops are looked for among modules.
    mods = {n: {t for t in ts if not (PKG.parent / (t.replace(".", "/") + "/__init__.py")).exists()}
            for n, ts in g.items() if not (PKG.parent / (n.replace(".", "/") + "/__init__.py")).exists()}
    index = {}
    low = {}
    stack: list[str] = []
    on: set[str] = set()
    loops = []
    counter = [0]

    def strong(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in mods.get(v, ()):
            if w not in mods:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(mods):
        if v not in index:
            strong(v)
    assert not loops, loops


def test_fusion_imports_without_pyarrow():
    """The pure fusion functions load in an interpreter where pyarrow (and so the store) cannot be imported."""
    code = ("import sys; sys.modules['pyarrow'] = None; sys.modules['lancedb'] = None; "
            "import polyseek.retrieve.fuse as F; print(F.fuse({'a': {'x': 1.0}, 'b': {'x': 2.0, 'y': 1.0}}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PKG.parent, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "'x'" in out.stdout
