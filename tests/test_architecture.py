"""The layers import downward only, with no circles (docs/architecture.md draws the picture).

Read from the source with ``ast`` (imports inside functions count too), so a lazy import cannot hide
a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sop_xl"

# Lower numbers are lower layers; a module may import its own layer or lower ones. The most specific
# prefix wins, so excel.setup / excel.publish (which build on the template) sit above excel.args.
LAYERS = {
    "sop_xl.contract": 0,
    "sop_xl.engine": 1,
    "sop_xl.plan": 2,
    "sop_xl.workbook": 3,
    "sop_xl.libreoffice": 3,
    "sop_xl.archive": 3,
    "sop_xl.scale": 3,
    "sop_xl.excel": 4,
    "sop_xl.udfs": 4,
    "sop_xl.template": 5,
    "sop_xl.excel.setup": 5,
    "sop_xl.excel.publish": 5,
    "sop_xl.demo": 6,
    "sop_xl.macros": 6,
    "sop_xl.cli": 6,
    "sop_xl.__main__": 6,
    "sop_xl": 0,  # the package's own __init__: the version, nothing else
}
# What each layer must never import from outside the package: the engine stays pure (frames in,
# frames out), and the plan steps know no workbook library beyond openpyxl's pure helpers.
FORBIDDEN = {
    "sop_xl.engine": ("xlwings", "openpyxl", "sop_xl.workbook", "sop_xl.excel"),
    "sop_xl.plan": ("xlwings",),
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str, modules=frozenset()) -> set[str]:
    """Every module ``path`` imports, absolute; relative imports resolved against its package.
    ``from pkg import mod`` counts as importing ``pkg.mod`` when that is one of ``modules``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = {f"{mod}.{a.name}" for a in node.names}
            found.update(subs & modules if subs & modules else {mod})
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path, name, frozenset(modules)) if m in modules and m != name}
    return graph


def _layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def test_every_module_has_a_layer():
    for module in _graph():
        assert any(module == p or module.startswith(p + ".") for p in LAYERS), module


def test_imports_go_downward_only():
    upward = sorted(f"{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})"
                    for m, deps in _graph().items() for d in deps if _layer(d) > _layer(m))
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycles = []

    def visit(node, trail):
        state[node] = 1
        for dep in sorted(graph[node]):
            if dep == node + ".__init__":
                continue
            if state.get(dep) == 1:
                cycles.append(" -> ".join(trail[trail.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, trail + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_keep_away_from_what_they_must_not_know(layer):
    offenders = []
    modules = frozenset(_graph())  # once: it parses the whole package
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        if not (name == layer or name.startswith(layer + ".")):
            continue
        for mod in _imports(path, name, modules):
            if any(mod == bad or mod.startswith(bad + ".") for bad in FORBIDDEN[layer]):
                offenders.append(f"{name} imports {mod}")
    assert not offenders, "\n".join(sorted(offenders))


def test_the_checks_see_a_planted_violation(tmp_path):
    """The import reader resolves relative and in-function imports (else the tests above prove nothing)."""
    src = tmp_path / "mod.py"
    src.write_text("def f():\n    from ..workbook import file_book\n    import xlwings\n")
    found = _imports(src, "sop_xl.engine.mod", frozenset({"sop_xl.workbook.file_book"}))
    assert "sop_xl.workbook.file_book" in found and "xlwings" in found
