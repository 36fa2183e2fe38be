"""The size limits of docs/ARCHITECTURE.md, held by a test: the Trainer stays a loop a newcomer reads in one
sitting, and no function grows past a screen."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "td3drive"
TRAINER_MAX_LINES = 220
FUNCTION_MAX_LINES = 50


def _defs(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node, node.end_lineno - node.lineno + 1


def test_trainer_is_under_220_lines():
    tree = ast.parse((PACKAGE / "train.py").read_text())
    sizes = {node.name: n for node, n in _defs(tree) if isinstance(node, ast.ClassDef)}
    assert 0 < sizes["Trainer"] < TRAINER_MAX_LINES, sizes["Trainer"]


def test_no_function_over_50_lines():
    long = [f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({n} lines)"
            for path in sorted(PACKAGE.rglob("*.py")) for node, n in _defs(ast.parse(path.read_text()))
            if not isinstance(node, ast.ClassDef) and n > FUNCTION_MAX_LINES]
    assert not long, long


def test_the_size_check_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(FUNCTION_MAX_LINES))
    (node, n), = [d for d in _defs(ast.parse(f"def f():\n{body}\n")) if d[0].name == "f"]
    assert n == FUNCTION_MAX_LINES + 1
