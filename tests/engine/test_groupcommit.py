"""Group commit: a state row is written only after a flush that began once its data was written, and the flush of
one batch runs while the next is being written."""

from __future__ import annotations

import threading

import pytest

from engine import groupcommit
from engine.groupcommit import GroupCommit


class Disk:
    """Counts writes: a row added after n writes is durable once a flush that began at n or later has returned."""

    def __init__(self, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.written = 0  # rows whose data "was written", in order
        self.durable = 0  # rows covered by a finished flush
        self.gate = gate
        self.fail = fail
        self.flushes = 0
        self.recorded: list[int] = []
        self.flushing = threading.Event()

    def flush(self) -> None:
        covered = self.written
        self.flushes += 1
        self.flushing.set()
        if self.gate is not None:
            assert self.gate.wait(5)
        if self.fail:
            raise OSError(28, "No space left on device")
        self.durable = max(self.durable, covered)

    def write(self, rows: list[int]) -> None:
        assert all(row < self.durable for row in rows), "a row was written before its data was durable"
        self.recorded.extend(rows)


def feed(commit: GroupCommit[int], disk: Disk, n: int) -> None:
    for _ in range(n):
        row = disk.written
        disk.written += 1
        commit.add(row)


def test_every_row_is_written_once_after_its_data_is_durable() -> None:
    disk = Disk()
    commit = GroupCommit(disk.flush, disk.write)
    feed(commit, disk, 3 * groupcommit.BATCH_ROWS + 7)
    commit.barrier()
    assert disk.recorded == list(range(3 * groupcommit.BATCH_ROWS + 7))
    assert disk.flushes == 4


def test_the_pass_goes_on_while_a_full_batch_is_flushed() -> None:
    gate = threading.Event()
    disk = Disk(gate)
    commit = GroupCommit(disk.flush, disk.write)
    feed(commit, disk, groupcommit.BATCH_ROWS)  # full: its flush starts and blocks on the gate
    assert disk.flushing.wait(5)
    feed(commit, disk, groupcommit.BATCH_ROWS - 1)  # not held up by the flush in flight
    assert disk.recorded == []  # nothing written while its flush has not returned
    gate.set()
    commit.barrier()
    assert disk.recorded == list(range(2 * groupcommit.BATCH_ROWS - 1))


def test_a_failed_flush_writes_none_of_its_rows_and_says_so() -> None:
    disk = Disk(fail=True)
    commit = GroupCommit(disk.flush, disk.write)
    feed(commit, disk, groupcommit.BATCH_ROWS)
    with pytest.raises(OSError, match="No space"):
        commit.barrier()
    assert disk.recorded == []
    disk.fail = False
    feed(commit, disk, 3)  # rows after the failure are still recorded once flushed
    commit.barrier()
    assert disk.recorded == [groupcommit.BATCH_ROWS, groupcommit.BATCH_ROWS + 1, groupcommit.BATCH_ROWS + 2]


def test_an_old_batch_is_flushed_though_not_full() -> None:
    now = [0.0]
    disk = Disk()
    commit = GroupCommit(disk.flush, disk.write, clock=lambda: now[0])
    feed(commit, disk, 2)
    now[0] = groupcommit.BATCH_SECONDS
    feed(commit, disk, 1)  # the batch is old enough: its flush starts
    assert disk.flushing.wait(5)
    commit.barrier()
    assert disk.recorded == [0, 1, 2]
