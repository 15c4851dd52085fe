"""Connections of the running engine: their config, checks (credentials, change-feed cursor), change-feed polls,
long polls and sign-in.

A check runs in its own short-lived thread; what it found goes through `transitions.after_check`. A connection
whose sign-in is gone ("sign-in needed") is not checked again, and its tasks do not run, until its config or
secrets change (a reload) or its token file does (`skysync connection login` writes `<home>/tokens/NAME.json`);
the other connections carry on.

Long polls (engine.runtime.poll.LongPoll): a connection whose provider can wait for changes gets one loop in
its own thread while it is checked, working, unpaused, inside its schedule and has an unpaused task; the
scheduler's tick starts and stops them (`tend_waiters`), a reopened provider gets a new one, and the engine's
stop ends them all.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from datetime import datetime

from engine.auth.tokens import TokenStore
from engine.config import Home
from engine.errors import UsageError
from engine.providers.base import Provider, ProviderError
from engine.runtime import schedule as sched
from engine.runtime.poll import ChangeFeed, LongPoll, PollTimer, clamp_period, poll_once, should_wait
from engine.runtime.runs import ConnRun, Core
from engine.runtime.throttle import TokenBucket
from engine.runtime.transitions import ConnState, after_check, signin_lost

ProviderFactory = Callable[[Home, str], Provider]


def _token_mtime(store: TokenStore) -> float:
    try:
        return os.stat(store.path).st_mtime
    except OSError:
        return 0.0


class Connections:
    def __init__(self, core: Core, provider_factory: ProviderFactory) -> None:
        self._core = core
        self._provider_factory = provider_factory
        self._waiters: dict[str, LongPoll] = {}  # connection name -> its running long poll (under core.cond)

    # -- config ----------------------------------------------------------------------------------------------
    def apply(self, home: Home, now: float) -> None:
        """Take the home's connections (under core.cond): new ones start, removed ones close, changed ones apply
        their limits and schedule at once and are checked again (secrets may have changed without config.toml's
        options changing, so a reload always re-checks and clears a "sign-in needed")."""
        core = self._core
        conns = {c.name: c for c in home.connections()}
        for name in list(core.conns):
            if name not in conns:
                self._close(core.conns.pop(name))
        for name, conn in conns.items():
            if clamp_period(conn.polling_period) != conn.polling_period:
                # A hand-edited config.toml bypasses the CLI's check: say so, and keep within the spec's bounds.
                for t in home.tasks(name):
                    core.info(
                        t.name,
                        f"connection '{name}': polling_period {conn.polling_period} s is outside 10..86400; "
                        f"using {clamp_period(conn.polling_period):g} s",
                        kind="error",
                    )
            run = core.conns.get(name)
            if run is None:
                timer = PollTimer(conn.polling_period, next_due=now + clamp_period(conn.polling_period))
                core.conns[name] = ConnRun(
                    conn, TokenBucket(conn.upload_limit * 1024), TokenBucket(conn.download_limit * 1024), timer
                )
                continue
            credentials_changed = (conn.provider, conn.options) != (run.conn.provider, run.conn.options)
            run.conn = conn
            run.up.set_rate(conn.upload_limit * 1024)  # live: running transfers slow down or speed up now
            run.down.set_rate(conn.download_limit * 1024)
            run.timer.set_period(conn.polling_period, now)
            # A provider that lost its sign-in is opened afresh: it may hold the dead token in memory.
            reopen = (credentials_changed or run.cs.signin_needed) and run.provider is not None
            run.cs = ConnState(ready=run.cs.ready and not reopen, needs_check=True)
            if reopen:
                self._close(run)

    def _close(self, run: ConnRun) -> None:
        self._stop_waiter(run.name)
        if run.provider is not None:
            with contextlib.suppress(Exception):
                run.provider.close()
        run.provider, run.feed = None, None

    def close_all(self) -> None:
        with self._core.cond:
            for name in list(self._waiters):
                self._stop_waiter(name)
            conns = list(self._core.conns.values())
        for c in conns:
            if c.provider is not None:
                with contextlib.suppress(Exception):
                    c.provider.close()

    # -- sign-in ---------------------------------------------------------------------------------------------
    def lose_signin(self, run: ConnRun, reason: str) -> bool:
        """A pass found the connection's sign-in gone (ReauthRequired): its passes stop until a login. Called
        under core.cond; True when that is news (the caller logs it for each task of the connection)."""
        run.cs, news = signin_lost(run.cs, run.name, reason)
        run.token_stamp = _token_mtime(TokenStore(self._core.home_path, run.name))
        for t in self._core.tasks_of(run.name):
            t.stop_pass("connection error")
        return news

    def watch_tokens(self) -> None:
        """A connection waiting for a sign-in whose token file changed and no longer says "sign-in needed"
        (a `connection login`, an import) is checked again with a provider opened afresh."""
        core = self._core
        with core.cond:
            waiting = [c for c in core.conns.values() if c.cs.signin_needed]
        for run in waiting:
            store = TokenStore(core.home_path, run.name)
            stamp = _token_mtime(store)
            if stamp == run.token_stamp or store.needs_signin():
                continue
            with core.cond:
                if not run.cs.signin_needed:
                    continue
                self._close(run)
                run.cs = ConnState(ready=False, needs_check=True)
                tasks = core.tasks_of(run.name)
                core.cond.notify_all()
            for t in tasks:
                core.info(t.name, f"connection '{run.name}': signed in again, syncing resumes")

    # -- checks and change feeds -----------------------------------------------------------------------------
    def spawn_check(self, conn: ConnRun, feed_only: bool = False) -> None:
        conn.busy = True
        threading.Thread(
            target=self._check, args=(conn, feed_only), name=f"check:{conn.name}", daemon=True
        ).start()

    def _check(self, conn: ConnRun, feed_only: bool) -> None:
        """Reach the service (credentials), take or advance the change-feed cursor; runs in its own thread."""
        core = self._core
        changed = True
        error: BaseException | None = None
        try:
            provider = conn.provider
            if provider is None:
                provider = self._provider_factory(Home(core.home_path), conn.name)
                conn.provider = provider
                conn.feed = ChangeFeed(provider) if ChangeFeed.supported(provider) else None
            if not feed_only:
                provider.check()
            if conn.feed is not None:
                changed = poll_once(conn.feed, conn.timer, core.clock()) or not feed_only
        except (ProviderError, UsageError) as exc:
            error = exc
        except Exception as exc:  # an SDK's surprise: treat like a transient provider error
            error = ProviderError(f"{type(exc).__name__}: {exc}")
        with core.cond:
            conn.busy = False
            outcome = after_check(conn.cs, conn.name, error, changed, feed_only, core.clock(), core.policy)
            conn.cs = outcome.conn
            if error is not None and conn.feed is not None:
                conn.feed.reset()
            if outcome.conn.signin_needed:
                conn.token_stamp = _token_mtime(TokenStore(core.home_path, conn.name))
            tasks = core.tasks_of(conn.name)
            for run in tasks:
                if outcome.mark:
                    run.mark(outcome.mark)
                if outcome.cancel_tasks:
                    run.stop_pass("connection error")
            core.cond.notify_all()
        for kind, line in outcome.lines:
            for run in tasks:
                core.info(run.name, line, kind=kind)

    # -- long polls ------------------------------------------------------------------------------------------
    def tend_waiters(self, when: datetime) -> None:
        """Start a long poll for each connection that should wait for changes, stop the others (under
        core.cond; the scheduler calls it every tick)."""
        core = self._core
        for name in [n for n in self._waiters if n not in core.conns]:
            self._stop_waiter(name)
        for name, conn in core.conns.items():
            provider = conn.provider
            want = provider is not None and should_wait(
                capable=provider.capabilities.wait_for_changes, ready=conn.cs.ready, error=bool(conn.cs.error),
                paused=conn.paused, allowed=sched.allowed(conn.conn.schedule, when), stopping=core.stopping,
                active_tasks=sum(1 for t in core.tasks_of(name) if not t.is_paused),
            )  # fmt: skip
            waiter = self._waiters.get(name)
            if waiter is not None and (not want or waiter.provider is not provider):
                self._stop_waiter(name)
                waiter = None
            if want and waiter is None and provider is not None:
                self._start_waiter(name, provider)

    def _start_waiter(self, name: str, provider: Provider) -> None:
        holder: list[LongPoll] = []

        def on_change() -> None:
            core = self._core
            with core.cond:
                if self._waiters.get(name) is not holder[0]:
                    return  # stopped meanwhile: what it saw is no longer this loop's to report
                for run in core.tasks_of(name):
                    run.mark("remote-change")
                core.cond.notify_all()

        def on_error(exc: BaseException, failures: int) -> None:
            core = self._core
            with core.cond:
                if self._waiters.get(name) is not holder[0] or failures != 1:
                    return  # said once per streak of failures
                conn = core.conns.get(name)
                period = clamp_period(conn.conn.polling_period) if conn is not None else 0
                tasks = core.tasks_of(name)
            for run in tasks:
                core.info(run.name, f"connection '{name}': waiting for remote changes failed ({exc}); "
                                    f"polling every {period:g} s meanwhile")  # fmt: skip

        holder.append(LongPoll(name, provider, on_change, on_error, self._core.policy))
        self._waiters[name] = holder[0]
        holder[0].start()

    def _stop_waiter(self, name: str) -> None:
        waiter = self._waiters.pop(name, None)
        if waiter is not None:
            waiter.stop()
