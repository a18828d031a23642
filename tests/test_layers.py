"""The package's layers, read from its source with ``ast``: every module imports only from its
own layer and the layers below it, and no modules import each other in a circle. Imports at
module level and inside functions count, relative and absolute alike."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_backend

PACKAGE = Path(__file__).resolve().parents[1] / "skconvnet"

#: Lowest first, as the map of the package in docs/contributing.md lists them: the top-level
#: names of the package (sub-packages and modules) in each layer.
LAYERS = [
    ("foundation", {"_optional", "_sklearn", "_keras", "_steps"}),
    ("inputs", {"inputs", "datasets"}),
    ("backbones", {"backbones"}),
    ("compute", {"compute"}),
    ("training", {"training"}),
    ("export", {"export"}),
    ("estimators", {"_extractor", "_classifier", "_regressor", "_finetuned", "_parameters",
                    "_fitting", "_persistence", "_dask"}),
    ("heatmaps", {"heatmaps"}),
    ("audit", {"audit"}),
    ("report", {"report"}),
    ("cli", {"cli", "__main__"}),
]


def modules(package):
    """``{dotted name: path}`` of every module of ``package`` (a folder)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = [package.name, *path.relative_to(package).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name, path, known):
    """The modules of ``known`` that module ``name`` (its source at ``path``) imports, with
    the names it takes from each: ``{module: {names}}`` (empty for ``import module``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    found.setdefault(alias.name, set())
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[:len(parts) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in known:  # ``from package import module``
                    found.setdefault(submodule, set())
                elif source in known:
                    found.setdefault(source, set()).add(alias.name)
    found.pop(name, None)
    return found


def layer_of(name, layers):
    """The position of module ``name``'s layer in ``layers``; None for the package itself."""
    parts = name.split(".")
    if len(parts) == 1:
        return None
    for position, (_, members) in enumerate(layers):
        if parts[1] in members:
            return position
    raise AssertionError(f"{name} is in no layer: add {parts[1]!r} to LAYERS (and to the "
                         "map of the package in docs/contributing.md)")


def violations(package, layers):
    """Imports that climb to a higher layer, and circles of imports, in ``package``."""
    known = modules(package)
    root = package.name
    public = set(_public_names(known[root]))
    graph, problems = {}, []
    for name, path in known.items():
        if name == root:  # the package's __init__: the public names, from every layer
            continue
        graph[name] = set()
        here = layer_of(name, layers)
        for module, names in imports(name, path, known).items():
            if module == root:  # the exception: the version and the public names
                unknown = sorted(names - public - {"__version__"})
                if unknown or not names:
                    problems.append(f"{name} imports {unknown or 'the package'} from {root}")
                continue
            graph[name].add(module)
            there = layer_of(module, layers)
            if there > here:
                problems.append(f"{name} ({layers[here][0]}) imports {module} "
                                f"({layers[there][0]}), a higher layer")
    problems += [f"modules that import each other in a circle: {', '.join(group)}"
                 for group in circles(graph)]
    return problems


def _public_names(path):
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
                getattr(target, "id", None) == "__all__" for target in node.targets):
            return ast.literal_eval(node.value)
    return []


def circles(graph):
    """The groups of modules that reach each other through imports, each sorted (the
    strongly connected components of ``graph``, by Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_from_a_higher_layer_or_in_a_circle():
    assert violations(PACKAGE, LAYERS) == []


def test_the_check_finds_a_climb_a_circle_and_a_private_name_of_the_package(tmp_path):
    package = tmp_path / "pkg"
    (package / "low").mkdir(parents=True)
    (package / "high").mkdir()
    files = {
        "__init__.py": "from .high.top import run\n__all__ = ['run']\n__version__ = '1'\n",
        "low/__init__.py": "",
        "low/a.py": "def f():\n    from ..high import top\n",  # climbs, inside a function
        "low/b.py": "from . import c\nfrom pkg import run, __version__\n",
        "low/c.py": "import pkg.low.b\nfrom pkg import _hidden\n",
        "high/__init__.py": "",
        "high/top.py": "from ..low.a import f\nrun = f\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    layers = [("low", {"low"}), ("high", {"high"})]
    assert violations(package, layers) == [
        "pkg.low.a (low) imports pkg.high.top (high), a higher layer",
        "pkg.low.c imports ['_hidden'] from pkg",
        "modules that import each other in a circle: pkg.high.top, pkg.low.a",
        "modules that import each other in a circle: pkg.low.b, pkg.low.c",
    ]
