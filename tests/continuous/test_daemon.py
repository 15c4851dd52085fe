"""run_forever's edges in-process: log line format, refusing a second engine, a home it cannot use."""

from __future__ import annotations

import io
import os
import signal
import threading

from engine.events import LogRecord, PassFinished, PassStarted, TransferProgress
from engine.runtime import Engine
from engine.runtime.daemon import StderrLog, format_event, run_forever

from .conftest import FakePass, make_home


def quiet_engine(home: str) -> Engine:
    """An engine whose passes do nothing, with no watcher and no control socket."""
    return Engine(home, pass_fn=FakePass(), watch=False, control=False)


def test_log_lines_are_greppable():
    line = format_event(LogRecord(0.0, "photos", "uploaded", "a/b.jpg"))
    assert line is not None and line.endswith(" skysync task=photos uploaded path=a/b.jpg")
    assert line[:4].isdigit() and line[10] == "T"  # 1970-01-01T00:00:00 in local time
    spaced = format_event(LogRecord(0.0, "t", "error", "x/y z.raw", 'disk "full"'))
    assert spaced is not None and spaced.endswith(' task=t error path="x/y z.raw" message="disk \\"full\\""')
    finished = format_event(PassFinished("t", {"uploaded": 2, "failed": 1}, False, "boom"))
    assert finished is not None and finished.endswith(" task=t pass-finished ok=0 failed=1 uploaded=2 error=boom")
    assert format_event(PassStarted("t", False)).endswith(" skysync task=t pass-started")  # type: ignore[union-attr]
    assert format_event(TransferProgress("t", "a", "up", 1, 2)) is None


def test_log_survives_a_closed_stream():
    stream = io.StringIO()
    log = StderrLog(stream)
    stream.close()
    log(LogRecord(0.0, "t", "uploaded", "a"))  # no exception: a detached service keeps syncing


def test_a_second_engine_is_refused_with_exit_code_2(tmp_path, capsys):
    setup = make_home(str(tmp_path))
    first = quiet_engine(setup.path)
    first.start()
    try:
        assert run_forever(setup.path) == 2
    finally:
        first.stop(3)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("skysync: another skysync engine is already running for this home (pid ")


def test_an_unusable_home_is_one_line_and_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert run_forever(str(blocker / "home")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("skysync: cannot start the engine:") and "\n" not in err


def test_sigterm_stops_run_forever_cleanly(tmp_path, capsys):
    setup = make_home(str(tmp_path))

    threading.Timer(1.0, os.kill, args=(os.getpid(), signal.SIGTERM)).start()
    assert run_forever(setup.path, engine_factory=quiet_engine) == 0
    err = capsys.readouterr().err
    assert "engine stopping reason=SIGTERM" in err and "engine stopped" in err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_sighup_stops_it_cleanly_unless_ignored_as_under_nohup(tmp_path, capsys):
    """A dropped SSH session hangs up the terminal of a foreground `skysync run`: a clean stop, not SIGHUP's
    default (the process just ending). nohup's ignore is kept: then only SIGTERM stops it."""
    setup = make_home(str(tmp_path))
    # SIGHUP's disposition as in a terminal, whatever the suite was started under (nohup ignores it).
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        threading.Timer(1.0, os.kill, args=(os.getpid(), signal.SIGHUP)).start()
        assert run_forever(setup.path, engine_factory=quiet_engine) == 0
        err = capsys.readouterr().err
        assert "engine stopping reason=SIGHUP" in err and "engine stopped" in err
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL

        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGHUP)).start()
        threading.Timer(2.0, os.kill, args=(os.getpid(), signal.SIGTERM)).start()
        assert run_forever(setup.path, engine_factory=quiet_engine) == 0
        assert "engine stopping reason=SIGTERM" in capsys.readouterr().err
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_an_engine_whose_lock_file_goes_stops_so_that_two_never_sync_one_home(tmp_path, monkeypatch, capsys):
    """The home deleted and made again while the engine ran (a second `make demo` did it): a second engine could
    lock the new engine.lock beside the first. The first notices within a config check and stops, exit 1."""
    from engine.runtime import scheduler
    from engine.runtime.lock import EngineLock

    monkeypatch.setattr(scheduler, "CONFIG_CHECK_EVERY", 0.1)
    setup = make_home(str(tmp_path))
    engines: list[Engine] = []

    def factory(home: str) -> Engine:
        engines.append(quiet_engine(home))
        return engines[-1]

    second = EngineLock(setup.path)

    def replace_the_lock_file() -> None:
        os.unlink(os.path.join(setup.path, "engine.lock"))
        second.acquire()  # what a second engine could do now: its flock is on another file

    threading.Timer(1.0, replace_the_lock_file).start()
    never_noticed = threading.Timer(10.0, os.kill, args=(os.getpid(), signal.SIGTERM))
    never_noticed.start()
    try:
        assert run_forever(setup.path, engine_factory=factory) == 1
    finally:
        never_noticed.cancel()
        second.release()
    err = capsys.readouterr().err
    assert "engine stopping reason=home-lost" in err and "lock file" in err and "was deleted or replaced" in err
    assert engines[0].ended == "home-lost"


def test_an_engine_keeps_running_while_its_lock_file_stays(tmp_path, monkeypatch):
    from engine.runtime import scheduler

    monkeypatch.setattr(scheduler, "CONFIG_CHECK_EVERY", 0.05)
    setup = make_home(str(tmp_path))
    engine = quiet_engine(setup.path)
    engine.start()
    try:
        threading.Event().wait(0.5)
        assert engine.ended is None
    finally:
        engine.stop(3)
