"""The shell blocks of README.md and docs/*.md, with the marker that says whether the docs test runs them.

A block is marked by the HTML comment on the line before its opening fence (invisible on GitHub and in
MkDocs): ``<!-- docs-test: run -->`` runs it in a new shell, ``<!-- docs-test: run background URL -->``
starts it, fetches URL once it answers and stops it, ``<!-- docs-test: run servers -->`` runs it like
``run`` although its `command &` jobs are servers (Prefect's port 4200 becomes a free one; the block must stop
them itself), and ``<!-- docs-test: check (why) -->`` runs nothing but checks that every `qmp` command in it
parses.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- docs-test: (run background (?P<url>\S+)|run servers|run|check(?: \(.*\))?) -->")
SHELL_FENCE = re.compile(r"^```(bash|sh|shell)\s*$")
SHELL_KEYWORDS = {"until", "while", "if", "then", "do", "else", "!"}  # `until qmp ...; do` runs `qmp ...`
REDIRECTION = re.compile(r"^\d*>")  # `2>/dev/null`


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    mode: str | None  # run, servers, background, check, or None (unmarked)
    text: str
    url: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """README.md, then the MkDocs pages in the order of mkdocs.yml's nav."""
    nav = re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.MULTILINE)
    return [ROOT / "README.md", *(ROOT / "docs" / name for name in nav)]


def mode_of(marker: re.Match[str]) -> str:
    if marker["url"]:
        return "background"
    return "servers" if marker[1] == "run servers" else marker[1].split()[0]


def blocks(page: Path) -> list[Block]:
    """Every shell block of ``page`` with its marker."""
    lines = page.read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        if SHELL_FENCE.match(lines[index]):
            end = lines.index("```", index + 1)
            marker = MARKER.search(lines[index - 1]) if index else None
            mode = None if marker is None else mode_of(marker)
            found.append(Block(str(page.relative_to(ROOT)), index + 1, mode, "\n".join(lines[index + 1:end]),
                               marker["url"] if marker else None))
            index = end
        index += 1
    return found


def qmp_commands(block: Block) -> list[list[str]]:
    """The arguments of every `qmp` command in ``block`` (continuations joined; comments, pipes, redirections and
    the keywords of `until`/`while`/`if` dropped)."""
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
            elif not (words == [] and token in SHELL_KEYWORDS) and not REDIRECTION.match(token):
                words.append(token)
    return commands
