"""Every relative link in README.md and docs/*.md points at a file that exists, and every
``#anchor`` at a heading of that file (GitHub's anchor rule), so moving a section never leaves
a dead link behind."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The page without fenced code blocks (their ``# comments`` are not headings, their
    brackets not links)."""
    return FENCE.sub("", text)


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (word characters, spaces and
    hyphens kept), spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor of a page's headings, with GitHub's ``-1``, ``-2`` suffixes for repeats."""
    seen: Counter[str] = Counter()
    result = set()
    for heading in HEADING.findall(_prose(page.read_text())):
        anchor = github_anchor(heading)
        result.add(f"{anchor}-{seen[anchor]}" if seen[anchor] else anchor)
        seen[anchor] += 1
    return result


def relative_links(page: Path) -> list[str]:
    """The page's links that are not URLs: files of this repository, with or without ``#anchor``."""
    prose = CODE_SPAN.sub("", _prose(page.read_text()))
    return [t for t in LINK.findall(prose) if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.I)]


def test_the_anchor_rule_matches_github() -> None:
    assert github_anchor("Local Redis") == "local-redis"
    assert github_anchor("`featurestore materialize`") == "featurestore-materialize"
    assert github_anchor("Status, for the on-call engineer") == "status-for-the-on-call-engineer"
    assert github_anchor("Quick start: an inference service") == "quick-start-an-inference-service"


def test_headings_in_code_blocks_are_not_anchors_and_links_in_code_are_not_links(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n```python\n# not a heading\nx = d[k](y)\n```\n\nsee `[a](b.md)` and [c](#title)\n")
    assert anchors(page) == {"title"}
    assert relative_links(page) == ["#title"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_exists(page: Path) -> None:
    dead = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            dead.append(f"{target}: no file {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            dead.append(f"{target}: no heading with anchor #{anchor} in {file.relative_to(ROOT)}")
    assert not dead, f"dead links in {page.relative_to(ROOT)}:\n" + "\n".join(dead)


def test_the_docs_index_links_every_page() -> None:
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / t.partition("#")[0]).resolve() for t in relative_links(index)}
    missing = [p.name for p in PAGES if p.parent == index.parent and p != index and p.resolve() not in linked]
    assert not missing, f"docs/README.md does not link: {missing}"
