"""No import circles in the product code: a module never imports, even lazily, what imports it back.

A circle makes import order matter (a half-initialised module, an ``ImportError`` that depends on who
came first) and hides a layer that is really two. The graph is every import statement in the product
packages and modules that ``pyproject.toml`` ships, those inside functions included (a lazy import runs
too, only later); imports under ``if TYPE_CHECKING:`` never run and do not count. Fast: it reads the
files (grimp's parser for the packages), it imports nothing.
"""

from __future__ import annotations

import ast
import graphlib
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def product_packages_and_modules() -> tuple[list[str], list[str]]:
    """What the wheel ships (``[tool.setuptools]``): its packages and its top-level modules."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = [pattern.rstrip("*") for pattern in setuptools["packages"]["find"]["include"]]
    return packages, list(setuptools["py-modules"])


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_of_file(path: Path) -> set[str]:
    """Every absolute import in ``path`` (a top-level module: grimp builds graphs of packages only), at any
    depth except under ``if TYPE_CHECKING:``; ``from a import b`` names both ``a`` and ``a.b``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def import_graph() -> dict[str, set[str]]:
    """Product module → the product modules it imports."""
    packages, modules = product_packages_and_modules()
    graph = grimp.build_graph(
        *packages, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None
    )
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        if module.split(".")[0] in packages:
            edges[module] = set(graph.find_modules_directly_imported_by(module))
    known = set(edges) | set(modules)
    for module in modules:
        edges[module] = _imports_of_file(ROOT / f"{module}.py")
    return {module: {target for target in targets if target in known} for module, targets in edges.items()}


def test_the_graph_sees_the_product_and_its_lazy_imports() -> None:
    """The check below can fail: the graph holds every product package, the top-level modules, and an
    import made inside a function (``sources.stream`` opens an RTSP stream's module only when asked)."""
    graph = import_graph()
    packages, modules = product_packages_and_modules()
    assert {module.split(".")[0] for module in graph} == set(packages) | set(modules)
    assert "sources.rtsp_stream" in graph["sources.stream"]
    assert "sources.netguard" in graph["settings"]


def test_no_module_imports_itself_back_through_others() -> None:
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as circle:
        # graphlib walks the graph as "needs"; reversed, the circle reads as "imports".
        raise AssertionError(f"import circle: {' -> '.join(reversed(circle.args[1]))}") from None
