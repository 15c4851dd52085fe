"""config.toml against its typed schema, through the console script: a hand-edited value of the wrong type, out of
range or under an unknown key is refused by every command (and `skysync run`) with the same one line naming the
key with its table, the value and what is expected; good hand edits are read as written and comments survive."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

SKYSYNC = shutil.which("skysync", path=os.path.dirname(sys.executable)) or "skysync"


@pytest.fixture
def home(tmp_path):
    """A home with one local connection and one upload task, written by hand (as a user would)."""
    for d in ("local", "cloud"):
        (tmp_path / d).mkdir()
    (tmp_path / "local" / "keep.txt").write_text("keep")
    h = tmp_path / "home"
    h.mkdir(mode=0o700)
    return h


def write_config(home, task_lines: str = "", extra: str = "", conn_lines: str = "") -> None:
    base = home.parent
    text = textwrap.dedent(f"""\
        # my hand-written config
        [connections.c]
        provider = "local"
        options = {{ root = "{base / 'cloud'}" }}
        {conn_lines}

        [tasks.photos]  # the photos
        connection = "c"
        local = "{base / 'local'}"
        remote = "/photos"
        direction = "upload"
        {task_lines}
        """) + textwrap.dedent(extra)
    (home / "config.toml").write_text(text)


def run(home, *args: str, check: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SKYSYNC_HOME": str(home)}
    p = subprocess.run([SKYSYNC, *args], env=env, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in p.stderr, p.stderr
    if check is not None:
        assert p.returncode == check, (args, p.returncode, p.stdout, p.stderr)
    return p


def refused_line(home, *args: str) -> str:
    p = run(home, *args, check=2)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "unexpected" not in lines[0], lines[0]
    return lines[0]


BAD_TASK_VALUES = [
    # (line in [tasks.photos], what the error line must hold)
    ('exclude_folders = "ab"', 'config.toml: tasks.photos.exclude_folders: expected a list of strings'),
    ('exclude_names = ["a", 3]', "tasks.photos.exclude_names: expected a list of strings"),
    ('no_delete = "false"', 'tasks.photos.no_delete: expected true or false'),
    ("paused = 1", "tasks.photos.paused: expected true or false"),
    ("max_size = -1", "tasks.photos.max_size: expected a whole number of bytes"),
    ('max_size = "10M"', "tasks.photos.max_size: expected a whole number of bytes"),
    ('exlude_folders = ["x"]', "tasks.photos.exlude_folders: unknown key"),
]


@pytest.mark.parametrize(("line", "expected"), BAD_TASK_VALUES, ids=[b[0] for b in BAD_TASK_VALUES])
def test_a_bad_task_value_is_one_line_naming_key_value_and_expectation(home, line, expected):
    write_config(home, task_lines=line)
    message = refused_line(home, "task", "list")
    assert expected in message, message
    value = line.partition(" = ")[2]
    if "unknown key" not in expected:
        assert f"got {value}" in message, message  # the value as it is written in the file


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('remote = "/photos"', 'remote = "/../outside"',
     """tasks.photos.remote: expected a path inside the connection without '.' or '..' parts"""),
    ('remote = "/photos"', 'remote = "photos/./../../outside"', "tasks.photos.remote: expected a path inside"),
    ('remote = "/photos"', 'remote = "\\\\..\\\\outside"', "tasks.photos.remote: expected a path inside"),
    ('direction = "upload"', 'direction = "upload"\nexclude_folders = ["cache", "a/../.."]',
     "tasks.photos.exclude_folders: expected a folder path relative to the task folder, without '.' or '..'"),
    ('direction = "upload"', 'direction = "upload"\nexclude_folders = [""]',
     "tasks.photos.exclude_folders: expected a folder path relative to the task folder"),
])
def test_a_hand_edited_path_out_of_its_folder_is_refused_as_task_add_refuses_it(home, tmp_path, old, new, expected):
    """`task add --remote /../outside` is refused; the same value edited into config.toml must be too, or a pass
    lists, downloads and writes files outside the connection's folder."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "private.txt").write_text("not part of the cloud root")
    write_config(home)
    path = home / "config.toml"
    path.write_text(path.read_text().replace(old, new))
    for args in (("task", "list"), ("sync",), ("run",)):
        message = refused_line(home, *args)
        assert expected in message, message
    assert sorted(p.name for p in (tmp_path / "local").iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cloud", "home", "local", "outside"]


def test_the_same_line_from_every_command_and_from_run(home, tmp_path):
    write_config(home, task_lines='exclude_folders = "ab"')
    lines = {refused_line(home, *args) for args in (
        ("task", "list"), ("task", "show", "photos"), ("sync",), ("sync", "photos", "--dry-run"), ("status",),
        ("status", "--json"), ("log",), ("settings", "get"), ("connection", "list"), ("run",),
    )}
    assert len(lines) == 1, lines
    assert lines.pop().endswith('tasks.photos.exclude_folders: expected a list of strings, such as ["a", "b"], '
                                'got "ab"')
    assert not (tmp_path / "cloud" / "photos").exists()  # nothing synced under a config read wrongly


def test_a_string_is_never_read_as_folders_nor_as_a_boolean(home, tmp_path):
    """The old reading: "ab" excluded folders a and b; "false" was true (no deletions). Both are refused now,
    and the real TOML forms work as written."""
    write_config(home, task_lines='exclude_folders = ["a"]\nno_delete = true')
    shown = json.loads(run(home, "task", "show", "photos", "--json", check=0).stdout)
    assert shown["exclude_folders"] == ["a"] and shown["no_delete"] is True
    write_config(home, task_lines='exclude_folders = "ab"')
    run(home, "task", "show", "photos", check=2)
    write_config(home, task_lines='no_delete = "false"')
    run(home, "task", "show", "photos", check=2)


BAD_OTHER_VALUES = [
    # (where, text, what the error line must hold)
    ("conn", "polling_period = 5", "connections.c.polling_period: expected a whole number of seconds from 10 to 86400"),
    ("conn", 'polling_period = "60"', "connections.c.polling_period: expected a whole number"),
    ("conn", "upload_limit = -1", "connections.c.upload_limit: expected a whole number of KiB/s"),
    ("conn", 'schedule = "101"', "connections.c.schedule: expected 168 characters of 0 and 1"),
    ("conn", "colour = 1", "connections.c.colour: unknown key"),
    ("extra", '[settings]\nconcurrency = 21\n', "settings.concurrency: expected a whole number from 1 to 20, got 21"),
    ("extra", '[settings]\nlog-max-records = 4\n', "settings.log-max-records: expected a whole number from 5 to 1"),
    ("extra", '[settings]\ndatabase-path = "rel/state.db"\n', "settings.database-path: expected an absolute path"),
    ("extra", '[settings]\nmass-delete-percent = 0\n', "settings.mass-delete-percent: expected a whole number"),
    ("extra", '[settings]\nmass-delete-min-files = "10"\n', "settings.mass-delete-min-files: expected a whole number"),
    ("extra", '[settings]\nadmin-order = "size"\n', 'settings.admin-order: expected "user" or "cloud-type"'),
    ("extra", '[settings]\nlog-max = 5\n', "settings.log-max: unknown key"),
    ("top", 'colour = "blue"\n', "config.toml: colour: unknown key (known keys here: connections, tasks, settings)"),
    ("extra", '[tasks.second]\nconnection = "nowhere"\nlocal = "/tmp"\nremote = "/"\n',
     "tasks.second.connection: no connection named \"nowhere\""),
    ("extra", '[tasks."bad name"]\nconnection = "c"\nlocal = "/tmp"\nremote = "/"\n',
     'tasks."bad name": a task name must start with a letter or digit'),
    ("extra", '[tasks.rel]\nconnection = "c"\nlocal = "relative/dir"\nremote = "/"\n',
     "tasks.rel.local: expected an absolute path"),
    ("extra", '[tasks.nolocal]\nconnection = "c"\nremote = "/"\n', "tasks.nolocal.local: missing"),
]


@pytest.mark.parametrize(("where", "text", "expected"), BAD_OTHER_VALUES, ids=[b[1] for b in BAD_OTHER_VALUES])
def test_connections_settings_and_names_are_checked_too(home, where, text, expected):
    if where == "conn":
        write_config(home, conn_lines=text)
    else:
        write_config(home, extra="" if where == "top" else text)
    if where == "top":  # a key before the first table is a top-level key
        (home / "config.toml").write_text(text + (home / "config.toml").read_text())
    message = refused_line(home, "task", "list")
    assert expected in message, message


def test_provider_options_must_be_scalars_and_their_values_are_never_shown(home):
    write_config(home, conn_lines='[connections.c.extra]\n')  # a table where no table belongs
    assert "connections.c.extra: unknown key" in refused_line(home, "connection", "list")
    base = home.parent
    (home / "config.toml").write_text(textwrap.dedent(f"""\
        [connections.c]
        provider = "local"
        options = {{ root = "{base / 'cloud'}", secret_access_key = ["hunter2-very-secret"] }}
        """))
    message = refused_line(home, "connection", "list")
    assert "connections.c.options.secret_access_key: expected a string, a number or true/false" in message
    assert "hunter2" not in message
    # numbers and booleans are fine: they are read as the text a provider gets from the command line
    (home / "config.toml").write_text(textwrap.dedent(f"""\
        [connections.c]
        provider = "local"
        options = {{ root = "{base / 'cloud'}", encode_names = true, part_size = 16 }}
        """))
    shown = json.loads(run(home, "connection", "show", "c", "--json", check=0).stdout)
    assert shown["options"]["encode_names"] == "true" and shown["options"]["part_size"] == "16"


def test_an_unknown_provider_kind_is_refused_at_load(home):
    write_config(home)
    text = (home / "config.toml").read_text().replace('provider = "local"', 'provider = "floppy"')
    (home / "config.toml").write_text(text)
    message = refused_line(home, "status")
    assert 'connections.c.provider: expected one of local, s3' in message and 'got "floppy"' in message


def test_secrets_file_errors_never_show_a_value(home):
    write_config(home)
    (home / "secrets.toml").write_text('[connections.c]\npassword = ["hunter2-very-secret"]\n')
    os.chmod(home / "secrets.toml", 0o600)
    message = refused_line(home, "task", "list")
    assert "secrets.toml: connections.c.password: expected a string" in message
    assert "hunter2" not in message


def test_invalid_toml_and_non_utf8_are_one_line(home):
    (home / "config.toml").write_text("[tasks.photos\n")
    assert "is not valid TOML" in refused_line(home, "task", "list")
    (home / "config.toml").write_bytes(b'# caf\xe9\n')
    assert "is not UTF-8 text" in refused_line(home, "task", "list")


def test_comments_survive_edits_and_the_result_is_still_valid(home, tmp_path):
    write_config(home, task_lines="exclude_exts = [\"tmp\"]  # scratch files")
    run(home, "task", "edit", "photos", "--max-size", "1000", "--no-delete", check=0)
    run(home, "settings", "set", "concurrency", "3", check=0)
    run(home, "connection", "edit", "c", "--option", "polling_period=120", check=0)
    text = (home / "config.toml").read_text()
    assert "# my hand-written config" in text and "# the photos" in text and "# scratch files" in text
    task = json.loads(run(home, "task", "show", "photos", "--json", check=0).stdout)
    assert task["max_size"] == 1000 and task["no_delete"] is True and task["exclude_exts"] == ["tmp"]
    assert run(home, "settings", "get", "concurrency", check=0).stdout.strip() == "3"
    run(home, "sync", "photos", check=0)
    assert (tmp_path / "cloud" / "photos" / "keep.txt").read_text() == "keep"


def test_values_typed_on_the_command_line_get_the_same_kind_of_line(home):
    write_config(home)
    assert "log-max-records: expected a whole number from 5 to 100000, got 4" in refused_line(
        home, "settings", "set", "log-max-records", "4")
    assert 'concurrency: expected a whole number from 1 to 20, got "many"' in refused_line(
        home, "settings", "set", "concurrency", "many")
    assert "database-path: expected an absolute path" in refused_line(
        home, "settings", "set", "database-path", "state.db")
    assert "polling_period: expected a whole number of seconds from 10 to 86400, got 86401" in refused_line(
        home, "connection", "edit", "c", "--option", "polling_period=86401")
    assert "schedule: expected 168 characters of 0 and 1" in refused_line(
        home, "connection", "edit", "c", "--option", "schedule=1")
    assert "settings" not in (home / "config.toml").read_text()  # nothing was written


def test_a_value_that_is_not_utf8_is_refused_in_one_line_and_nothing_is_saved(tmp_path, capsys):
    """A folder named in another encoding cannot be stored in the TOML config: found by a hostile probe as
    'unexpected UnicodeEncodeError (a bug)'."""
    from engine.cli import main

    odd = os.fsdecode(bytes(tmp_path) + b"/l\xff")
    os.mkdir(odd)
    (tmp_path / "c").mkdir()
    (tmp_path / "l").mkdir()
    home = str(tmp_path / "home")
    assert main(["--home", home, "connection", "add", "c", "--provider", "local", "--option",
                 f"root={tmp_path / 'c'}"]) == 0
    assert main(["--home", home, "task", "add", "t", "--connection", "c", "--local", str(tmp_path / "l"),
                 "--remote", "/t", "--direction", "bidirectional"]) == 0
    before = (tmp_path / "home" / "config.toml").read_bytes()
    capsys.readouterr()
    for argv in (["task", "edit", "t", "--exclude-folder", "d\udcfe"],
                 ["task", "add", "t2", "--connection", "c", "--local", odd, "--remote", "/x", "--direction", "upload"],
                 ["connection", "add", "c2", "--provider", "local", "--option", f"root={odd}"],
                 ["settings", "set", "database-path", odd + "/s.db"]):
        assert main(["--home", home, *argv]) == 2
        err = capsys.readouterr().err
        assert "not valid UTF-8" in err and ("\\xff" in err or "\\xfe" in err), err
        assert "unexpected" not in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "home" / "config.toml").read_bytes() == before
