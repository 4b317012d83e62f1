"""The layers hold: pages -> ui -> decoding_core, and the core imports neither ui nor streamlit.

The contracts of the packages live in pyproject.toml ([tool.importlinter]) and are checked by
import-linter. ``app.py`` and ``pages/*.py`` are scripts Streamlit runs, not a package, so their
rules are checked here by reading their source.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = REPO_ROOT / "pyproject.toml"
APP_FILE = REPO_ROOT / "app.py"
PAGE_FILES = sorted((REPO_ROOT / "pages").glob("*.py"))
#: `lint-imports` through this interpreter, whatever PATH holds.
LINT_IMPORTS = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()"]
#: Numerical libraries a page or the entry point never needs: that work belongs in the core.
HEAVY_LIBRARIES = {"numpy", "nilearn", "nibabel", "scipy", "sklearn", "pandas"}
#: What ``app.py`` may call on ``st``: set the page up and build the navigation, nothing drawn.
NAVIGATION_CALLS = {"set_page_config", "Page", "navigation", "stop"}


def run_lint_imports(cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run import-linter with the project's contracts (pyproject.toml) from ``cwd``."""
    return subprocess.run([*LINT_IMPORTS, "--no-cache", "--no-logo", str(PYPROJECT)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (functions included), as written."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def top_level(module: str) -> str:
    return module.split(".")[0]


def test_import_linter_contracts_are_kept():
    completed = run_lint_imports(REPO_ROOT)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "0 broken" in completed.stdout, completed.stdout


def test_import_linter_reports_a_core_module_that_imports_streamlit(tmp_path):
    """The contract can fail: a copy of the packages where one core module imports streamlit."""
    for package in ("decoding_core", "ui"):
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    broken_module = tmp_path / "decoding_core" / "errors.py"
    broken_module.write_text(broken_module.read_text() + "\nimport streamlit  # noqa: E402,F401\n")

    completed = run_lint_imports(tmp_path, env=dict(os.environ, PYTHONPATH=str(tmp_path)))

    assert completed.returncode != 0, completed.stdout
    assert "decoding_core never imports streamlit BROKEN" in completed.stdout, completed.stdout
    assert "decoding_core.errors -> streamlit" in completed.stdout, completed.stdout
    assert "decoding_core never imports ui KEPT" in completed.stdout, completed.stdout


def test_pages_and_entry_point_exist():
    assert APP_FILE.is_file()
    assert PAGE_FILES, "no pages/*.py"
    assert not (REPO_ROOT / "pages" / "__init__.py").exists(), "pages/ holds scripts Streamlit runs, not a package"


@pytest.mark.parametrize("page", PAGE_FILES, ids=lambda path: path.name)
def test_pages_never_import_each_other(page):
    page_names = {path.stem for path in PAGE_FILES}
    for module in imported_modules(page):
        assert not module.startswith("."), f"{page.name}: relative import {module!r} (pages are not a package)"
        assert top_level(module) != "pages", f"{page.name} imports {module}: pages never import each other"
        assert top_level(module) not in page_names, f"{page.name} imports the page {module}"


@pytest.mark.parametrize("page", PAGE_FILES, ids=lambda path: path.name)
def test_pages_leave_numerical_work_to_the_core(page):
    heavy = {module for module in imported_modules(page) if top_level(module) in HEAVY_LIBRARIES}
    assert not heavy, f"{page.name} imports {sorted(heavy)}: pages call ui/ and decoding_core for that"


def test_app_imports_no_numerical_library():
    heavy = {module for module in imported_modules(APP_FILE) if top_level(module) in HEAVY_LIBRARIES}
    assert not heavy, f"app.py imports {sorted(heavy)}: it only builds the navigation"


def test_app_only_builds_the_navigation():
    tree = ast.parse(APP_FILE.read_text())
    streamlit_names = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                       for alias in node.names if alias.name == "streamlit"}
    used = {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in streamlit_names}
    assert {"Page", "navigation"} <= used, f"app.py must build st.navigation from st.Page entries; uses {sorted(used)}"
    assert used <= NAVIGATION_CALLS, f"app.py draws {sorted(used - NAVIGATION_CALLS)}: that belongs in a page"


def test_every_test_folder_is_a_package():
    """Tests import their helpers as ``tests.<folder>.<module>``; a folder without __init__.py breaks that."""
    folders = {path.parent for path in (REPO_ROOT / "tests").rglob("*.py") if "data" not in path.parts}
    missing = sorted(str(folder.relative_to(REPO_ROOT)) for folder in folders if not (folder / "__init__.py").exists())
    assert not missing, f"add an empty __init__.py to: {missing}"


def _import_cycles(imports: dict) -> list:
    """The strongly connected groups of more than one module (Tarjan), i.e. the import cycles."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in imports.get(module, ()):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return cycles


def test_cycle_finder_finds_a_cycle():
    assert _import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere():
    """No module of decoding_core or ui imports, through others, a module that imports it.

    Imports under ``if TYPE_CHECKING:`` are left out: they never run (the decoding tables
    name `DecodingConfig` in annotations only, while the configuration reads the tables).
    """
    import grimp

    graph = grimp.build_graph("decoding_core", "ui", exclude_type_checking_imports=True)
    imports = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    assert _import_cycles(imports) == []
