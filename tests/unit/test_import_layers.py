"""The import graph, derived from the code: every import (also those inside functions) goes to the
same layer or one below, and no module imports itself back through others (docs/architecture.md,
"Layout")."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# bottom to top; a package may import its own layer and those below it
LAYERS = [
    ("schemas",),
    ("operators", "anomaly"),
    ("featurestore",),
    ("settings",),
    ("stack",),
    ("jobs",),
    ("services",),
    ("fyp",),
    ("bench",),
]
LAYER_OF = {pkg: i for i, pkgs in enumerate(LAYERS) for pkg in pkgs}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Project modules `path` imports, resolved to the longest existing module name."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out.update(n for n in names if n.split(".")[0] in LAYER_OF)
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for pkg in LAYER_OF for p in (ROOT / pkg).rglob("*.py")}
    edges = {}
    for mod, path in files.items():
        # `from pkg import name`: the module pkg.name if there is one, else pkg itself
        edges[mod] = {n for n in project_imports(path) if n in files} - {mod}
    return edges


def test_every_top_level_folder_of_code_has_a_layer():
    code = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert code - {"tests"} <= set(LAYER_OF), f"a package without a layer: {sorted(code - set(LAYER_OF))}"


def test_no_import_goes_up_a_layer():
    upward = sorted(f"{a} -> {b}" for a, targets in graph().items() for b in targets
                    if LAYER_OF[b.split(".")[0]] > LAYER_OF[a.split(".")[0]])
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(mod, path):
        state[mod] = 1
        for nxt in sorted(edges.get(mod, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[mod] = 2

    for mod in sorted(edges):
        if mod not in state:
            visit(mod, [mod])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_imports_inside_functions():
    # settings/config.py imports the read client's default check inside a validator: the graph has it
    assert "featurestore.client" in graph()["settings.config"]
