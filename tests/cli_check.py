"""The CLI's answer to bad input, checked one way for every test: exit code 2, one line."""

from __future__ import annotations

import re

from analogsim import cli


def one_line_exit_2(argv: list[str], pattern: str, capsys) -> str:
    """Run the CLI in this process; check exit code 2, no traceback, and one stderr line
    matching ``pattern``; return that line."""
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]
