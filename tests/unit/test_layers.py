"""The house is one-way: every vidplug module imports only its own layer or the layers below it (README, developer
section), and no two modules import each other, not even lazily inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vidplug"

# lowest first; a module may import modules of its own layer or of a lower one
LAYERS: list[set[str]] = [
    {"vidplug", "vidplug.errors", "vidplug.typed", "vidplug.runtime", "vidplug.distributed"},
    {"vidplug.io", "vidplug.weights", "vidplug.report_html"},  # report_html: report pages, an output format
    {"vidplug.physics", "vidplug.prior"},
    {"vidplug.consistency", "vidplug.metrics"},
    {"vidplug.solver"},
    {"vidplug.config"},
    {"vidplug.methods", "vidplug.models"},
    {"vidplug.pipeline", "vidplug.simulate"},
    {"vidplug.evaluation", "vidplug.demo"},
    {"vidplug.cli", "vidplug.__main__"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every vidplug module ``path`` imports, at the top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vidplug"):
            for alias in node.names:  # `from vidplug.prior import adm` imports the submodule vidplug.prior.adm
                sub = PACKAGE.parent.joinpath(*node.module.split("."), alias.name)
                is_module = sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file()
                out.add(f"{node.module}.{alias.name}" if is_module else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("vidplug"))
    return out


def layer(module: str) -> int:
    """Index of the layer holding ``module`` (the longest matching package prefix)."""
    best, index = "", None
    for i, members in enumerate(LAYERS):
        for m in members:
            if (module == m or module.startswith(m + ".")) and len(m) > len(best):
                best, index = m, i
    assert index is not None, f"{module} is in no layer: add it to LAYERS and to the README's diagram"
    return index


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_imports_a_layer_above_it(module):
    upward = sorted(dep for dep in GRAPH[module] if layer(dep) > layer(module))
    assert not upward, f"{module} (layer {layer(module)}) imports {upward} from a layer above"


def test_no_import_cycles():
    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for dep in GRAPH.get(todo.pop(), ()):
                if dep not in seen and dep in GRAPH:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    # a package's __init__ re-exporting its own modules is not a cycle between concepts
    cycles = sorted(f"{m} -> {dep}" for m in GRAPH for dep in GRAPH[m]
                    if m in reachable(dep) and not dep.startswith(m + "."))
    assert not cycles, f"import cycles through: {cycles}"


def test_the_layers_catch_an_upward_import():
    assert layer("vidplug.solver.dmplug") < layer("vidplug.config.run") < layer("vidplug.pipeline.restore")
    assert layer("vidplug.physics.registry") < layer("vidplug.pipeline")
