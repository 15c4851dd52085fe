"""The folder-id resolver the id-addressed drives share (`engine.providers.idtree`), over a tree in a dict: one
request per name not yet known, made folders cached, a file in the way refused, one folder made when two threads
need it, names folded where the service ignores case, and a moved folder forgotten with what it held; then what
that means on each of the three drives' fakes."""

from __future__ import annotations

import importlib
import io
import pathlib
import threading
from collections import Counter

import pytest

from engine.providers import provider_class
from engine.providers.base import ProviderError
from engine.providers.idtree import Child, FolderIds


class Tree:
    """A service's items by (parent id, name), with the calls made to it counted."""

    def __init__(self, fold: bool = False) -> None:
        self.items: dict[tuple[str, str], Child] = {}
        self.calls: Counter[str] = Counter()
        self.fold = fold
        self.lock = threading.Lock()

    def _key(self, parent: str, name: str) -> tuple[str, str]:
        return parent, name.casefold() if self.fold else name

    def add(self, parent: str, name: str, is_dir: bool = True) -> str:
        item_id = f"id{len(self.items) + 1}"
        with self.lock:
            self.items[self._key(parent, name)] = Child(item_id, is_dir)
        return item_id

    def find(self, parent: str, name: str, what: str) -> Child | None:
        self.calls["find"] += 1
        return self.items.get(self._key(parent, name))

    def make(self, parent: str, path: str, what: str) -> str:
        self.calls["make"] += 1
        return self.add(parent, path.rpartition("/")[2])

    def ids(self, fold: bool = False) -> FolderIds:
        return FolderIds(lambda: "root", self.find, self.make, fold=str.casefold if fold else str)


def test_a_path_is_resolved_one_name_at_a_time_and_kept() -> None:
    tree = Tree()
    a = tree.add("root", "a")
    b = tree.add(a, "b")
    tree.add(b, "file.txt", is_dir=False)
    ids = tree.ids()
    assert ids.lookup("/") == ids.lookup("") == "root"
    assert ids.lookup("/a/b/") == b and tree.calls["find"] == 2
    assert ids.lookup("a/b") == b and ids.lookup("a") == a and tree.calls["find"] == 2  # from the cache
    assert ids.lookup("a/b/file.txt") is None  # a file is no folder
    assert ids.lookup("a/missing/deeper") is None
    assert tree.calls["make"] == 0


def test_ensure_makes_the_missing_parents_once_and_refuses_a_file_in_the_way() -> None:
    tree = Tree()
    a = tree.add("root", "a")
    ids = tree.ids()
    made = ids.ensure("a/b/c")
    assert tree.calls["make"] == 2 and ids.lookup("a") == a
    assert ids.ensure("a/b/c") == made and tree.calls["make"] == 2
    tree.add(a, "f", is_dir=False)
    with pytest.raises(ProviderError, match="creating folder /a/f: a file holds that name"):
        ids.ensure("a/f/g")
    assert tree.calls["make"] == 2


def test_two_threads_needing_one_new_folder_make_it_once() -> None:
    tree = Tree()
    inside, second_looked = threading.Event(), threading.Event()
    first = threading.get_ident()

    def slow_make(parent: str, path: str, what: str) -> str:
        inside.set()
        second_looked.wait(0.3)  # without the lock the second thread looks (and finds nothing) meanwhile
        return tree.make(parent, path, what)

    def find(parent: str, name: str, what: str) -> Child | None:
        if threading.get_ident() != first:
            second_looked.set()
        return tree.find(parent, name, what)

    ids = FolderIds(lambda: "root", find, slow_make)
    results: list[str] = []
    other = threading.Thread(target=lambda: (inside.wait(5), results.append(ids.ensure("new"))))
    other.start()
    results.append(ids.ensure("new"))
    other.join(5)
    assert tree.calls["make"] == 1 and len(set(results)) == 1 and len(results) == 2


def test_names_that_differ_by_case_are_one_folder_where_the_service_ignores_case() -> None:
    tree = Tree(fold=True)
    ids = tree.ids(fold=True)
    made = ids.ensure("Photos/2024")
    assert ids.lookup("photos/2024") == made and ids.ensure("PHOTOS/2024") == made
    assert tree.calls["find"] == 2 and tree.calls["make"] == 2


def test_forget_drops_a_folder_with_what_it_held_and_nothing_beside_it() -> None:
    tree = Tree()
    ids = tree.ids()
    ids.remember("a", "id-a")
    ids.remember("a/b", "id-b")
    ids.remember("ab", "id-ab")
    ids.forget("a")
    assert ids.lookup("ab") == "id-ab" and tree.calls["find"] == 0
    assert ids.lookup("a/b") is None and tree.calls["find"] == 1  # asked again: gone from the service too
    ids.forget()
    assert ids.lookup("ab") is None


def test_without_find_a_folder_is_made_at_once_and_a_taken_name_answered_by_make() -> None:
    tree = Tree()
    existing = tree.add("root", "there")

    def make(parent: str, path: str, what: str) -> str:
        tree.calls["make"] += 1
        found = tree.items.get((parent, path.rpartition("/")[2]))
        return found.id if found is not None else tree.add(parent, path.rpartition("/")[2])

    ids = FolderIds(lambda: "root", None, make)
    assert ids.ensure("there") == existing and tree.calls == Counter(make=1)
    ids.ensure("there/new")
    assert tree.calls == Counter(make=2)
    with pytest.raises(TypeError):
        ids.lookup("there")


@pytest.mark.parametrize("kind", ["gdrive", "box", "onedrive"])
def test_a_write_under_a_moved_folders_old_path_makes_the_folder_again(tmp_path: pathlib.Path, kind: str) -> None:
    # Against each drive's fake: the folder ids cached under a/x (and below) go with the move, so a/x/y is made
    # anew rather than taken for the folder that now stands at a/z/y (OneDrive forgot only a/x itself, and its
    # write by path then failed: "the parent folder does not exist").
    server = importlib.import_module(f"tests.providers.servers.{kind}")
    with server.serve(tmp_path) as options:
        provider = provider_class(kind)(options)
        try:
            provider.upload("a/x/y/one.txt", io.BytesIO(b"1"), 1, 1_700_000_000)
            provider.move("a/x", "a/z")
            provider.upload("a/x/y/two.txt", io.BytesIO(b"2"), 1, 1_700_000_000)
            files = {e.path for e in provider.list("") if not e.is_dir}
        finally:
            provider.close()
    assert files == {"a/z/y/one.txt", "a/x/y/two.txt"}
