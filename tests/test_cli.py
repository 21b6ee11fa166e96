"""The command line: bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import pytest

from prerec.cli import main


def test_missing_path_exits_2(capsys, tmp_path):
    assert main(["data", "stats", f"x=canonical:{tmp_path / 'nope'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such file" in err[0] and "nope" in err[0]


def test_unknown_format_exits_2(capsys, tmp_path):
    assert main(["data", "stats", f"x=not-a-format:{tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "unknown format 'not-a-format'" in err and "canonical" in err


def test_no_command_prints_help(capsys):
    assert main([]) == 2


@pytest.mark.parametrize("spec", ["justtext", "=canonical", ""])
def test_malformed_spec(capsys, spec):
    assert main(["data", "stats", spec]) == 2
    assert "expected NAME=FORMAT:PATH" in capsys.readouterr().err
