"""README.md is a user's page: short, its quick start runs as printed, its links resolve.

The quick start (the first ```python block under the "Quick start" heading) runs in a fresh
interpreter of this environment, exactly as printed, in an empty folder. Every relative link in
README.md and docs/*.md must name an existing file, and a link to a heading of a Markdown page
(``page.md#heading``) must name a heading that page has (GitHub's anchor rules).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 250
QUICK_START_HEADING = "## Quick start"

# [text](target) and ![alt](target); a target ends at whitespace or ")" (titles are not used)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def _pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def _prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(lines)


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a Markdown page's headings (lower case, punctuation dropped)."""
    anchors, seen = set(), {}
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def quick_start() -> str:
    """The first ```python block after the quick-start heading of README.md."""
    text = README.read_text(encoding="utf-8")
    assert QUICK_START_HEADING in text, f"README.md has no {QUICK_START_HEADING!r} heading"
    after = text.split(QUICK_START_HEADING, 1)[1]
    block = re.search(r"^```python\n(.*?)^```", after, flags=re.MULTILINE | re.DOTALL)
    assert block is not None, "no ```python block under the quick-start heading"
    return block.group(1)


def test_readme_is_short():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines; at most {MAX_README_LINES}: move depth into docs/"
    )


def test_readme_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    first_block = re.search(r"^```\w*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands[:2] == ["make demo", "make test"]


def test_quick_start_runs_as_printed(tmp_path):
    script = tmp_path / "quickstart.py"
    script.write_text(quick_start(), encoding="utf-8")
    # one torch thread: under `pytest -n 2` two threads per process only spin against each other
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 5, completed.stdout
    percent = [float(re.search(r"(\d+\.\d+) %", line).group(1)) for line in lines]
    assert all(50 < p <= 100 for p in percent), completed.stdout  # trained, and on the chip
    assert "over 16 instance(s)" in lines[-1]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE):
            continue  # https:, mailto:, ...
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: {linked.name} has no heading with anchor #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)
