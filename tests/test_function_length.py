"""No function or method in the product is longer than a screen (60 lines), except the few named below.

Pure `ast`: nothing of the product is imported, so the check takes well under a second.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("registry", "tasks", "flows", "deployments")
MAX_LINES = 60

# "path::qualname" -> why it may stay longer than MAX_LINES. An entry that no longer names a long function fails
# the second test, so the list shrinks as functions are split.
ALLOW_LIST: dict[str, str] = {}


def product_files() -> Iterator[Path]:
    """Every module of the product, migrations' version scripts left out (generated, one upgrade each)."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations/versions" not in path.relative_to(ROOT).as_posix():
                yield path


def function_lengths(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, lines from `def` to the body's last line) of every function and method in `tree`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + node.name
            yield name, (node.end_lineno or node.lineno) - node.lineno + 1
            yield from function_lengths(node, f"{name}.<locals>.")
        elif isinstance(node, ast.ClassDef):
            yield from function_lengths(node, f"{prefix}{node.name}.")
        else:
            yield from function_lengths(node, prefix)


def long_functions() -> dict[str, int]:
    """"path::qualname" -> lines, for every function longer than MAX_LINES."""
    found: dict[str, int] = {}
    for path in product_files():
        where = path.relative_to(ROOT).as_posix()
        for name, lines in function_lengths(ast.parse(path.read_text(encoding="utf-8"), filename=where)):
            if lines > MAX_LINES:
                key = f"{where}::{name}"
                found[key] = max(lines, found.get(key, 0))
    return found


def test_no_function_in_the_product_is_longer_than_sixty_lines() -> None:
    too_long = {key: lines for key, lines in long_functions().items() if key not in ALLOW_LIST}
    assert not too_long, (
        f"functions longer than {MAX_LINES} lines (split them into named steps, or add them to ALLOW_LIST "
        "with the reason): " + ", ".join(f"{key} ({lines} lines)" for key, lines in sorted(too_long.items())))


def test_every_allow_listed_function_still_exists_and_is_still_too_long() -> None:
    long = long_functions()
    stale = sorted(key for key in ALLOW_LIST if key not in long)
    assert not stale, ("ALLOW_LIST entries that no longer name a function longer than "
                       f"{MAX_LINES} lines (remove them): " + ", ".join(stale))


def test_the_allow_list_gives_a_reason_for_each_entry() -> None:
    assert all(reason.strip() for reason in ALLOW_LIST.values())


def test_the_count_runs_from_def_to_the_last_line_and_names_methods_and_nested_functions() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))  # the def line plus MAX_LINES: one too many
    source = f"class Page:\n  def render(self):\n    def inner():\n{body.replace('    ', '      ')}\n"
    lengths = dict(function_lengths(ast.parse(source)))
    assert lengths == {"Page.render": MAX_LINES + 2, "Page.render.<locals>.inner": MAX_LINES + 1}
