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


def test_ctrl_c_while_the_engine_loads_is_one_line(monkeypatch, capsys):
    """A Ctrl+C in the first tenths of a second (the engine's imports and its parser) said a traceback."""
    import engine.cli

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine.cli, "build_parser", interrupted)
    assert main(["status"]) == 130
    assert capsys.readouterr().err == "skysync: error: interrupted\n"
