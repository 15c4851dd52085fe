"""The remote side of a pass from a change feed: a remote index kept in the state and brought up to date by the
service's deltas, instead of a full listing every time.

Where a provider has ids and a change feed (`Capabilities.ids` and `.changes`), a pass reads the changes since
the saved cursor, applies them by id to the task's remote index (a rename by id moves the whole subtree; an entry
reported by parent id and name is placed under its parent), saves the new cursor in the same transaction, and
streams the index in canonical order: the same remote stream a listing gives, so the reconcile is unchanged.

It lists everything instead (taking a fresh cursor *before* the listing, and saving the rebuilt index with it
once the listing was read to its end) when there is no cursor for this pairing, when the service no longer knows
the cursor (`CursorExpired`), when a change cannot be placed (its parent is unknown: the index is not to be
trusted), when a change touches something the last listing left out (its reason may be gone), at least every
FULL_LISTING_EVERY as a safety net, and on a pass started with `--force` (a user overriding a guard should be
looking at the truth, not at the index). A dry run always lists and saves nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from engine.providers.base import Change, CursorExpired, Provider, RemoteEntry
from engine.state import FeedKey, IndexUpdate, StateDB

FULL_LISTING_EVERY = 24 * 3600.0
DUPLICATE_REASON = (
    "the cloud holds more than one entry under this name; none of them is synced until all but one are renamed "
    "in the cloud (nothing is changed on either side meanwhile)"
)

OK, DEFER, UNTRUSTED = "ok", "defer", "untrusted"


def feed_capable(provider: Provider) -> bool:
    caps = provider.capabilities
    return caps.ids and caps.changes


class RemoteSource:
    """Where one pass reads the remote folder from (see the module's docstring).

    `open(on_skip)` returns the remote entries (paths relative to the folder, reported skips through `on_skip`),
    and may be called again to read them once more (the pass re-plans with a sorted stream). `settle()` is
    called once the plan was made from a complete stream: it saves a rebuilt index and its cursor.
    """

    def __init__(self, db: StateDB, task_id: int, key: FeedKey, provider: Provider, *, full: bool,
                 clock: Callable[[], float]) -> None:
        self.db = db
        self.task_id = task_id
        self.key = key
        self.provider = provider
        self.clock = clock
        self.reason: str | None = "forced" if full else None  # why the pass lists everything (None: the feed)
        self._cursor: str | None = None  # taken before the full listing
        self._recorder: _Recorder | None = None
        self._started = False
        # The index paths the applied changes named, where they were and where they are now (a folder stands
        # for its subtree): what an incremental pass looks at (engine.incremental).
        self.touched: set[str] = set()

    @property
    def from_feed(self) -> bool:
        return self._started and self.reason is None

    def open(self, on_skip: Callable[[str, str], None]) -> Iterable[RemoteEntry]:
        if not self._started:
            self._started = True
            if self.reason is None:
                self.reason = self._catch_up()
            if self.reason is not None:
                self._cursor = self.provider.changes_start(self.key.folder)  # before the listing: nothing is missed
        if self.reason is None:
            return index_stream(self.db, self.task_id, on_skip)
        self._recorder = recorder = _Recorder()  # before the call: a listing may report its skips at once
        recorder.feed(self.provider.list_reporting(self.key.folder, self._skip_to(on_skip)))
        return recorder

    def _skip_to(self, on_skip: Callable[[str, str], None]) -> Callable[[str, str], None]:
        def skip(path: str, reason: str) -> None:
            if self._recorder is not None:
                self._recorder.skips[path] = reason
            on_skip(path, reason)

        return skip

    def _catch_up(self) -> str | None:
        """Bring the index up to date from the feed; None when done, otherwise why everything is listed."""
        saved = self.db.feed(self.task_id, self.key.folder, self.key.pairing)
        if saved is None:
            return "no saved cursor"
        if self.clock() - saved.listed >= FULL_LISTING_EVERY:
            return "the periodic full listing"
        try:
            changes, cursor = self.provider.changes(self.key.folder, saved.cursor)
            batch = list(changes)
            # The folder's id costs requests on some services (a path walk on Drive): asked only when there is
            # something to place, so a pass with nothing new costs the feed's one request.
            root_id = self.provider.folder_id(self.key.folder) if batch else None
            with self.db.index_update(self.task_id, self.key) as index:
                before = _named(index, batch)
                verdict = apply_changes(index, batch, root_id, self.db.index_skips(self.task_id))
                if verdict == OK:
                    self.touched = before | _named(index, batch)
                    index.commit(cursor)
        except CursorExpired:
            return "the service no longer knows the cursor"
        return None if verdict == OK else "a change the index cannot place"

    def settle(self) -> None:
        """Save the index rebuilt from a full listing with the cursor taken before it, in one transaction; only
        from a listing read to its end whose every entry carries an id."""
        rec = self._recorder
        if self.reason is None or rec is None or self._cursor is None or not rec.complete or not rec.has_ids:
            return
        self.db.save_index(self.task_id, self.key, self._cursor, self.clock(), rec.entries, rec.skips)


def _named(index: IndexUpdate, batch: list[Change]) -> set[str]:
    """Where the entries of a batch are in the index (asked before and after it is applied)."""
    out: set[str] = set()
    for change in batch:
        entry = index.get(change.id)
        if entry is not None:
            out.add(entry.path)
        if change.path and change.path.strip("/"):
            out.add(change.path.strip("/"))
    return out


class _Recorder:
    """A full listing that keeps what it yields, to become the remote index."""

    def __init__(self) -> None:
        self._it: Iterator[RemoteEntry] = iter(())
        self.entries: list[RemoteEntry] = []
        self.skips: dict[str, str] = {}
        self.complete = False
        self.has_ids = True

    def feed(self, listing: Iterable[RemoteEntry]) -> None:
        self._it = iter(listing)

    def __iter__(self) -> Iterator[RemoteEntry]:
        for entry in self._it:
            if entry.id is None:
                self.has_ids = False
            self.entries.append(entry)
            yield entry
        self.complete = True


def index_stream(db: StateDB, task_id: int, on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
    """The index in canonical order, as a listing reports it: what the last listing left out is reported again,
    and a name that more than one entry holds is reported as skipped (with everything below it), never merged."""
    for path, reason in db.index_skips(task_id).items():
        on_skip(path, reason)
    yield from unique_names(db.index_entries(task_id), on_skip)


def unique_names(entries: Iterable[RemoteEntry], on_skip: Callable[[str, str], None]) -> Iterator[RemoteEntry]:
    """Index entries in canonical order, with a name that more than one entry holds reported as skipped (with
    everything below it). Also used on a part of the index (an incremental pass reads one folder's subtree)."""
    held: list[RemoteEntry] = []
    dropped: str | None = None
    for entry in entries:
        if dropped is not None and entry.path.startswith(dropped + "/"):
            continue
        dropped = None
        if held and held[0].path == entry.path:
            held.append(entry)
            continue
        if len(held) == 1:
            yield held[0]
        elif held:
            dropped = held[0].path
            on_skip(dropped, DUPLICATE_REASON)
            if entry.path.startswith(dropped + "/"):
                held = []
                continue
        held = [entry]
    if len(held) == 1:
        yield held[0]
    elif held:
        on_skip(held[0].path, DUPLICATE_REASON)


def apply_changes(index: IndexUpdate, changes: Iterable[Change], root_id: str | None, skips: dict[str, str]) -> str:
    """Apply a feed's changes to the index by id: OK, or UNTRUSTED (the caller lists everything instead).

    A change whose parent is not known yet waits for the rest of the batch (services do not promise parents
    first); a later change of the same id replaces it, since every upsert carries the entry as it is now.
    """
    waiting: dict[str, Change] = {}
    for change in changes:
        if root_id is not None and change.id == root_id:
            return UNTRUSTED  # the synced folder itself was renamed, moved or deleted: a listing tells
        waiting.pop(change.id, None)
        verdict = _apply(index, change, root_id, skips)
        if verdict == UNTRUSTED:
            return UNTRUSTED
        if verdict == DEFER:
            waiting[change.id] = change
    while waiting:
        progress = False
        for rid, change in list(waiting.items()):
            verdict = _apply(index, change, root_id, skips)
            if verdict == UNTRUSTED:
                return UNTRUSTED
            if verdict == OK:
                del waiting[rid]
                progress = True
        if not progress:
            return UNTRUSTED  # a parent the index does not know: something was missed
    return OK


def _touches(path: str, skips: dict[str, str]) -> bool:
    return any(path == s or path.startswith(s + "/") or s.startswith(path + "/") for s in skips)


def _apply(index: IndexUpdate, change: Change, root_id: str | None, skips: dict[str, str]) -> str:
    old = index.get(change.id)
    if old is None and change.entry is None and change.path:
        # A deletion reported by path alone (Dropbox's deleted entries carry no id): the one entry of that name.
        named = index.at(change.path.strip("/"))
        if len(named) > 1:
            return UNTRUSTED
        old = named[0] if named else None
    if old is not None and (_touches(old.path, skips) or (old.is_dir and index.count_at(old.path) > 1)):
        return UNTRUSTED  # a skipped name, or a folder whose subtree cannot be told from a namesake's
    entry = change.entry
    if entry is None:
        if old is not None:
            _drop(index, old)
        return OK
    if change.path is not None:
        path = change.path.strip("/")
        if not path or not index.folder_at(path.rpartition("/")[0]):
            return DEFER
        parent_id = change.parent_id or entry.parent_id
    else:
        name = change.name or entry.path.rpartition("/")[2]
        if not name or "/" in name:
            return UNTRUSTED  # a name no path can carry: the listing skips it with its reason
        parent_id = change.parent_id or entry.parent_id
        if parent_id is not None and parent_id == root_id:
            path = name
        else:
            parent = index.get(parent_id) if parent_id else None
            if parent is None or not parent.is_dir:
                return DEFER
            path = f"{parent.path}/{name}"
    if _touches(path, skips):
        return UNTRUSTED
    if old is not None and old.is_dir and (old.path != path or not entry.is_dir):
        for below in index.below(old.path):
            if entry.is_dir:
                index.put(below._replace(path=path + below.path[len(old.path):]))
            else:
                index.remove(below.id or "")
    index.put(entry._replace(path=path, id=change.id, parent_id=parent_id))
    return OK


def _drop(index: IndexUpdate, old: RemoteEntry) -> None:
    if old.is_dir:
        for below in index.below(old.path):
            index.remove(below.id or "")
    index.remove(old.id or "")
