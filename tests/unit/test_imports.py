"""The shape of the imports: the Telegram side never imports torch or transformers (the bot can run
where the models don't), the model side never imports telegram, and no circle of imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

BLOCKER = """
import importlib.abc, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "torchvision", "ctranslate2"):
            raise ImportError(f"the bot must not import {name}")
        return None

sys.meta_path.insert(0, Blocked())
"""


@pytest.mark.process
def test_the_bot_imports_without_torch_or_transformers():
    code = BLOCKER + "\nimport bot, bot.__main__, bot.app, bot.runner\nprint('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.process
def test_the_blocker_would_catch_an_import():
    code = BLOCKER + "\nimport captioning.engine"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "must not import torch" in result.stderr


# -- the shape: a module depends only on those below it ------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def imports(package: str) -> dict[str, set[str]]:
    """module -> the modules of this project it imports, at its top or inside a function (not
    those imported only for type checking). ``from .x import name`` imports ``.x``, and
    ``from . import name`` the module ``name`` where there is one, else the package."""
    paths = {_name(path): path for path in sorted((ROOT / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        typing_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) not in typing_only and isinstance(node, ast.stmt):
                found |= _targets(node, here, paths)
        graph[name] = {target for target in found if target in paths and target != name}
    return graph


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.stmt, here: str, modules: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = here
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    module = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
    submodules = {f"{module}.{alias.name}" for alias in node.names} & set(modules)
    names = len(submodules) < len(node.names)  # some are names defined in the module itself
    return submodules | ({module} if names else set())


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle of imports among the modules of ``graph``, each found once."""
    found, seen = [], set()

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                circle = path[path.index(target) :]
                if frozenset(circle) not in seen:
                    seen.add(frozenset(circle))
                    found.append([*circle, target])
            elif len(path) < 16:
                visit(target, [*path, target])

    for module in sorted(graph):
        visit(module, [module])
    return found


@pytest.mark.parametrize("package", ["bot", "captioning"])
def test_no_module_imports_one_that_imports_it_back(package):
    graph = imports(package)
    assert len(graph) > 10  # the whole package was read
    assert cycles(graph) == []


def test_a_circle_of_imports_would_be_found():
    assert cycles({"a": {"a.b"}, "a.b": {"a.c"}, "a.c": {"a.b"}}) == [["a.b", "a.c", "a.b"]]


def test_the_model_side_never_imports_telegram():
    for module in imports("captioning"):
        source = (ROOT / Path(*module.split("."))).with_suffix(".py")
        source = source if source.exists() else ROOT / Path(*module.split(".")) / "__init__.py"
        text = source.read_text()
        assert "import telegram" not in text and "from telegram" not in text, module
