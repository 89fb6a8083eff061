"""The package's plan, checked on its source: layers, cycles, private names, length.

Every module under ``ccdpixfix/`` is parsed with `ast` (nothing is
imported), and every import, at module level or inside a function, becomes
an edge of the import graph, relative imports resolved.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ccdpixfix"

# The subpackages from the bottom up: each may import those before it, never
# those after. The order follows the plan of issue 16 with three moves the
# code needs: colour/ and io/ sit below badpixels/ (every step splits a
# mosaic into colours, and a map writes itself atomically), and the command
# line comes last (it runs the simulated demo and draws plots).
LAYERS = (
    "utils",
    "kernels",
    "noise",
    "colour",
    "io",
    "badpixels",
    "transients",
    "replace",
    "pipeline",
    "datasets",
    "visualization",
    "cli",
)
# Leaves anyone may import; they import no other part of ccdpixfix.
LEAVES = ("flags", "_version")
# The top: the public API, ``python -m ccdpixfix`` and the old module paths
# kept as aliases. Only they may import from anywhere, and nothing imports
# them.
ALIASES = (
    "batch",
    "cfa",
    "chunks",
    "demo",
    "images",
    "medians",
    "night",
    "plotting",
    "residuals",
    "rgb",
    "scoring",
    "stacks",
)
TOP = ("__init__", "__main__", *ALIASES)

MAX_BODY_LINES = 80
# Functions allowed a longer body, each with its reason.
LONG_FUNCTIONS = {
    # A parser table: one add_argument call after another, read top to bottom.
    "ccdpixfix.cli.parser._parser",
}


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    return {
        _module_name(path): path
        for path in sorted(PACKAGE.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


MODULES = _modules()


def _absolute(module, path, node):
    """The module an ``ImportFrom`` names, relative levels resolved."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module, path):
    """(target module, imported name or None, line) of every import in ``module``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, path, node)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in MODULES:
                    found.append((submodule, None, node.lineno))
                else:
                    found.append((source, alias.name, node.lineno))
    return [entry for entry in found if entry[0].split(".")[0] == "ccdpixfix"]


def _unit(module):
    """The layer (subpackage or top-level module) a module belongs to."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


EDGES = [
    (module, target, name, line)
    for module, path in MODULES.items()
    for target, name, line in _imports(module, path)
]


def test_the_plan_names_every_module():
    planned = set(LAYERS) | set(LEAVES) | set(TOP)
    units = {_unit(module) for module in MODULES}
    assert not units - planned, (
        f"{sorted(units - planned)} in no layer: add each to LAYERS above, "
        "after every subpackage it imports and before every one that imports it"
    )
    assert not planned - units, f"{sorted(planned - units)} planned but missing"


def test_imports_go_down_the_layers():
    wrong = []
    for module, target, _, line in EDGES:
        source, goal = _unit(module), _unit(target)
        if source == goal or source in TOP or goal in LEAVES:
            continue
        if source in LEAVES or goal in TOP:
            wrong.append(f"{module}:{line} imports {target}")
        elif LAYERS.index(goal) > LAYERS.index(source):
            wrong.append(f"{module}:{line} imports {target}, a layer above")
    assert not wrong, "\n".join(wrong)


def _cycles(graph):
    """Strongly connected groups of more than one node (Tarjan)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for following in graph.get(node, ()):
            if following not in index:
                visit(following)
                low[node] = min(low[node], low[following])
            elif following in on_stack:
                low[node] = min(low[node], index[following])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


@pytest.mark.parametrize("level", ["subpackages", "modules"])
def test_no_import_cycles(level):
    name = _unit if level == "subpackages" else (lambda module: module)
    graph = {}
    for module, target, _, _ in EDGES:
        source, goal = name(module), name(target)
        if source != goal:
            graph.setdefault(source, set()).add(goal)
    assert _cycles(graph) == []


def _private(name):
    # ``_version`` is a leaf (LEAVES) and ``__version__`` a dunder.
    dunder = name.startswith("__") and name.endswith("__")
    return name.startswith("_") and not dunder and name != "_version"


def test_no_private_name_crosses_subpackages():
    wrong = []
    for module, target, name, line in EDGES:
        if _unit(module) == _unit(target) or _unit(module) in TOP:
            continue
        path = target.split(".")[1:] + ([name] if name else [])
        private = [part for part in path if _private(part)]
        if private:
            wrong.append(f"{module}:{line} imports {'.'.join(private)} from {target}")
    assert not wrong, "\n".join(wrong)


def _functions(module, path):
    """(qualified name, body lines) of every function, methods and nested too."""

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}.{child.name}"
                body = child.body
                if (
                    isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)
                    and len(body) > 1
                ):
                    body = body[1:]
                yield name, child.end_lineno - body[0].lineno + 1
                yield from walk(child, name)
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}.{child.name}")

    return walk(ast.parse(path.read_text(), str(path)), module)


def test_no_function_over_80_lines():
    long = {
        name: lines
        for module, path in MODULES.items()
        for name, lines in _functions(module, path)
        if lines > MAX_BODY_LINES
    }
    too_long = {
        name: lines for name, lines in long.items() if name not in LONG_FUNCTIONS
    }
    assert not too_long, f"bodies over {MAX_BODY_LINES} lines: {too_long}"
    assert not LONG_FUNCTIONS - set(long), "exempt but short: drop from the list"
