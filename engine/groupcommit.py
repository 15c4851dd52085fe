"""Group commit of state rows: a row is written only once the data it describes is durable on both sides.

Rows of finished transfers wait in a batch; when the batch is full (or old enough) both sides are flushed to
stable storage (one `syncfs` for many files, not one `fsync` per file) and the batch is written to the state
database in one transaction. A state row therefore never describes data a power cut could still take back; a
kill before a batch is written only costs a comparison on the next pass (equal content is recorded, not copied
again).

The flush of a full batch runs in a thread of its own while the pass goes on writing the next files: on a
local disk it is mostly waiting for the device (`syncfs` releases the GIL), which used to stop the pass for the
whole wait (50,000 small files: about 0.6 s of 4.4 s). Its rows are written once it returned, by the next
batch's turn or by `barrier()`: a row is still only written after a flush that began after its data was
written. At most one flush is in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

Row = TypeVar("Row")

BATCH_ROWS = 500  # state rows waiting for one flush, at most
BATCH_SECONDS = 2.0  # and at most this long


class GroupCommit(Generic[Row]):
    """`flush()` makes every write so far durable; `write(rows)` records rows (the caller's thread, always)."""

    def __init__(self, flush: Callable[[], None], write: Callable[[list[Row]], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._flush = flush
        self._write = write
        self._clock = clock
        self._lock = threading.Lock()  # the waiting batch
        self._turn = threading.Lock()  # one thread at a time lands, flushes and writes
        self._waiting: list[Row] = []
        self._since = 0.0
        self._in_flight: tuple[Future[None], list[Row]] | None = None  # the flush under way, and its rows

    def add(self, row: Row) -> None:
        """Queue a row whose data has been written; a full batch starts its flush in the background."""
        with self._lock:
            if not self._waiting:
                self._since = self._clock()
            self._waiting.append(row)
            due = len(self._waiting) >= BATCH_ROWS or self._clock() - self._since >= BATCH_SECONDS
        if due:
            with self._turn:
                self._land()
                rows = self._take()
                if rows:
                    self._in_flight = (self._flush_in_background(), rows)

    def barrier(self) -> None:
        """Everything queued so far flushed and written before this returns (a flush error is raised, and the rows
        it covered are not written)."""
        with self._turn:
            self._land()
            rows = self._take()
            if rows:
                self._flush()
                self._write(rows)

    def _take(self) -> list[Row]:
        with self._lock:
            rows, self._waiting = self._waiting, []
        return rows

    def _flush_in_background(self) -> Future[None]:
        from concurrent.futures import Future  # not at import: a pass that fills no batch never needs it

        done: Future[None] = Future()

        def flush() -> None:
            try:
                self._flush()
            except BaseException as exc:  # handed to whoever lands this flush
                done.set_exception(exc)
            else:
                done.set_result(None)

        threading.Thread(target=flush, name="skysync-flush", daemon=True).start()
        return done

    def _land(self) -> None:
        """Wait for the flush in flight and write its rows; its error, if it failed (its rows are then dropped:
        the next pass compares those files again)."""
        if self._in_flight is None:
            return
        done, rows = self._in_flight
        self._in_flight = None
        done.result()
        self._write(rows)
