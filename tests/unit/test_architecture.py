"""The shape of buildflow/ stays as docs/architecture.md draws it: no import cycles, small modules, classes and
functions, few modules at the top level, and one version everywhere. (The import layers are import-linter's
contracts in pyproject.toml, checked by `make lint`.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp
import networkx as nx

import buildflow

PACKAGE = Path(buildflow.__file__).parent
MAX_MODULE_LINES, MAX_CLASS_LINES, MAX_FUNCTION_LINES, MAX_TOP_LEVEL_MODULES = 500, 300, 60, 10


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph("buildflow", cache_dir=None)
    imports = nx.DiGraph(
        (module, imported) for module in graph.modules for imported in graph.find_modules_directly_imported_by(module)
    )
    assert list(nx.simple_cycles(imports)) == []


def test_modules_classes_and_functions_stay_small() -> None:
    too_big = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(PACKAGE.parent).as_posix()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_big.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    too_big.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    assert too_big == []


def test_few_modules_at_the_top_level() -> None:
    top_level = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top_level) <= MAX_TOP_LEVEL_MODULES, top_level


def test_one_version_in_the_package_the_metadata_and_the_changelog() -> None:
    changelog = (PACKAGE.parent / "CHANGELOG.md").read_text()
    newest = re.search(r"^## (\d+\.\d+\.\d+)", changelog, re.MULTILINE)
    assert newest is not None and newest[1] == buildflow.__version__
    assert 'dynamic = ["version"]' in (PACKAGE.parent / "pyproject.toml").read_text()
