"""HTML pieces of the report page: tables, figures and notes, every text escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

#: Tables longer than this many rows are folded (click to open).
_FOLD_ROWS = 30


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], *,
               caption: str = "") -> str:
    """A table of plain-text cells; long tables are folded in a <details> element."""
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in rows)
    table = f"<table><tr>{head}</tr>{body}</table>"
    note = f'<p class="note">{html.escape(caption)}</p>' if caption else ""
    if len(rows) > _FOLD_ROWS:
        return (f"<details><summary>table of {len(rows)} rows</summary>{table}</details>"
                f"{note}")
    return table + note


def figure_html(path: Path | None, alt: str) -> str:
    """An <img> of a PNG beside index.html (by relative path), or nothing."""
    if path is None:
        return ""
    return f'<img src="{html.escape(path.name)}" alt="{html.escape(alt)}">'


def paragraph(text: str, *, note: bool = False) -> str:
    """A paragraph of plain text (nothing for no text); ``note``: in the page's muted style."""
    if not text:
        return ""
    attribute = ' class="note"' if note else ""
    return f"<p{attribute}>{html.escape(text)}</p>"


def heading(anchor: str, title: str) -> str:
    """A section heading the page's contents link to."""
    return f'<h2 id="{html.escape(anchor)}">{html.escape(title)}</h2>'
