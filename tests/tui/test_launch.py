"""`skysync --help` says that no command opens the terminal app (issue 20 item 14)."""

from __future__ import annotations

import pytest

from tui.launch import main


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["--home", "/nowhere", "--help"]])
def test_help_says_no_command_opens_the_app(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "usage: skysync" in out and "With no command, skysync opens its terminal app" in out


def test_a_command_keeps_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    assert "With no command" not in capsys.readouterr().out
