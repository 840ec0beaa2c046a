"""The shell blocks of README.md and docs/*.md, with the marker that says whether the docs test runs them.

A block is marked by the HTML comment on the line before its opening fence (invisible on GitHub and in
MkDocs): ``<!-- docs-test: run -->`` runs it in a new shell, ``<!-- docs-test: run background URL -->``
starts it, fetches URL once it answers and stops it, and ``<!-- docs-test: check (why) -->`` runs nothing
but checks that every `qmp` command in it parses.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- docs-test: (run background (?P<url>\S+)|run|check(?: \(.*\))?) -->")
SHELL_FENCE = re.compile(r"^```(bash|sh|shell)\s*$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    mode: str | None  # run, background, check, or None (unmarked)
    text: str
    url: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """README.md, then the MkDocs pages in the order of mkdocs.yml's nav."""
    nav = re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.MULTILINE)
    return [ROOT / "README.md", *(ROOT / "docs" / name for name in nav)]


def blocks(page: Path) -> list[Block]:
    """Every shell block of ``page`` with its marker."""
    lines = page.read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        if SHELL_FENCE.match(lines[index]):
            end = lines.index("```", index + 1)
            marker = MARKER.search(lines[index - 1]) if index else None
            mode = None if marker is None else ("background" if marker["url"] else marker[1].split()[0])
            found.append(Block(str(page.relative_to(ROOT)), index + 1, mode, "\n".join(lines[index + 1:end]),
                               marker["url"] if marker else None))
            index = end
        index += 1
    return found


def qmp_commands(block: Block) -> list[list[str]]:
    """The arguments of every `qmp` command in ``block`` (continuations joined, comments and pipes dropped)."""
    joined = re.sub(r"\\\n\s*", " ", block.text)
    commands = []
    for line in joined.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|"):
                if words and Path(words[0]).name == "qmp":
                    commands.append(words[1:])
                words = []
            else:
                words.append(token)
    return commands
