"""The fault suite's environment faults: a full disk, a file-size limit, a read-only
store, a cache that is a folder, deleted or corrupted mid-run.

Each refused command is ONE line on stderr (notes aside), exit 1, and leaves every stored
byte as it was; each read that the environment allows still answers. Full disk is a real
1 MiB tmpfs and read-only a real read-only bind mount (root only: skipped where mounting
is refused); the file-size limit is a real RLIMIT_FSIZE in a subprocess.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from testing import Result, assert_fails, ok
from testing.inprocess import cli
from testing.stores import snapshot

from git_taskstore import EnvironmentFault, Store

RECORD = '{"id":"a","title":"first"}'


def _mount(*args: str) -> bool:
    proc = subprocess.run(["mount", *args], capture_output=True, check=False)
    return proc.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs holding a store with one record."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)):
        pytest.skip("mounting a tmpfs is refused here (not root)")
    try:
        yield mnt
    finally:
        _umount(mnt)


def _fill(folder: Path) -> Path:
    """Write a file until the file system has no byte left; return it."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for size in (65536, 4096, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError:
                continue
    return filler


def _pad_to_page(path: Path) -> None:
    """Grow a JSONL file to exactly 4 KiB with one more record: a full tmpfs then has no
    byte left in the file's last page, and an append fails whole (cutting a partly
    written append back is the write path's job, tested with it)."""
    size = path.stat().st_size
    head = b'{"id":"pad","p":"'
    tail = b'"}\n'
    with open(path, "ab") as handle:
        handle.write(head + b"x" * (4096 - size - len(head) - len(tail)) + tail)
    assert path.stat().st_size == 4096


def _errors(result: Result) -> list[str]:
    """stderr without its notes: what the user must act on."""
    return [line for line in result.err.splitlines() if not line.startswith("note:")]


def test_a_full_disk_refuses_writes_in_one_line_and_reads_still_answer(
    full_disk: Path,
) -> None:
    """Mutation: drop the OSError conversion in Engine.guarded (or the in-memory cache
    fallback), and the put (or the get) ends in a traceback."""
    store = full_disk / "store"
    ok(cli("init", "--store", str(store), cwd=full_disk))
    ok(cli("put", "tasks", RECORD, "--store", str(store), cwd=full_disk))
    _pad_to_page(store / "tasks.jsonl")
    ok(cli("sync", "--store", str(store), cwd=full_disk))
    filler = _fill(full_disk)
    before = snapshot(store)
    put = cli("put", "tasks", '{"id":"b"}', "--store", str(store), cwd=full_disk)
    assert put.code == 1, put
    assert "Traceback" not in put.err
    errors = _errors(put)
    assert len(errors) == 1 and errors[0].startswith("error: "), put
    assert "space" in errors[0], put
    assert snapshot(store) == before
    got = ok(cli("get", "tasks", "a", "--json", "--store", str(store), cwd=full_disk))
    assert '"first"' in got.out
    # Space again: the store works as before, nothing to repair by hand.
    filler.unlink()
    ok(cli("put", "tasks", '{"id":"b"}', "--store", str(store), cwd=full_disk))
    listed = ok(cli("list", "tasks", "--json", "--store", str(store), cwd=full_disk))
    assert '"b"' in listed.out and '"a"' in listed.out


def test_a_full_disk_raises_environment_fault_through_the_api(full_disk: Path) -> None:
    """Mutation: drop the OSError conversions of both Engine.guarded and Engine.append:
    the API raises a bare OSError."""
    with Store.open_dir(full_disk / "store") as store:
        store.collection("tasks").put({"id": "a"})
        _pad_to_page(Path(store.file_path("tasks")))
        store.sync()
        _fill(full_disk)
        before = snapshot(store.path)
        with pytest.raises(EnvironmentFault, match="free some disk space"):
            store.collection("tasks").put({"id": "b"})
        assert snapshot(store.path) == before
        assert store.collection("tasks").get("a") is not None


def test_the_file_size_limit_is_one_line(tmp_path: Path) -> None:
    """A real RLIMIT_FSIZE of the JSONL file's size in the child: the append gets EFBIG
    (Python ignores SIGXFSZ). Mutation: drop the OSError conversion in Engine.append: the
    line does not name tasks.jsonl."""
    store = tmp_path / "store"
    ok(cli("put", "tasks", RECORD, "--store", str(store), cwd=tmp_path))
    before = snapshot(store)
    limit = os.path.getsize(store / "tasks.jsonl")

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "git_taskstore",
            "put",
            "tasks",
            '{"id":"b"}',
            "--store",
            f"{store}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=cap,
        # The limit would cut the .pyc files this run writes short.
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("note:")]
    assert len(errors) == 1, proc.stderr
    assert "tasks.jsonl" in errors[0] and "ulimit -f" in errors[0], proc.stderr
    assert snapshot(store) == before


@pytest.fixture
def read_only_store(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(the store as written, the same store through a read-only bind mount)."""
    src = tmp_path / "src"
    ok(cli("put", "tasks", RECORD, "--store", str(src / ".taskstore"), cwd=tmp_path))
    ro = tmp_path / "ro"
    ro.mkdir()
    if not _mount("--bind", str(src), str(ro)):
        pytest.skip("bind mounts are refused here (not root)")
    try:
        if not _mount("-o", "remount,bind,ro", str(ro)):
            pytest.skip("a read-only remount is refused here")
        yield src / ".taskstore", ro / ".taskstore"
    finally:
        _umount(ro)


def test_a_read_only_checkout_reads_and_refuses_writes_in_one_line(
    read_only_store: tuple[Path, Path],
) -> None:
    """Mutation: drop the in-memory fallback of Engine._open_cache: the get fails; drop
    `reading=True` in Engine.fresh: it fails on the lock file it cannot create."""
    src, ro = read_only_store
    before = snapshot(src)
    got = ok(cli("get", "tasks", "a", "--json", "--store", str(ro), cwd=ro.parent))
    assert '"first"' in got.out
    assert "in memory" in got.err or "into memory" in got.err
    put = cli("put", "tasks", '{"id":"b"}', "--store", str(ro), cwd=ro.parent)
    line = assert_fails(
        Result(put.code, put.out, "\n".join(_errors(put))), 1, "read-only file system"
    )
    assert "writable clone" in line
    assert snapshot(src) == before


def test_a_cache_that_is_a_folder_is_read_around(tmp_path: Path) -> None:
    """The folder is not ours to delete: the store reads into memory instead.
    Mutation: drop the in-memory fallback: `unable to open database file` traceback."""
    store = tmp_path / "store"
    ok(cli("put", "tasks", RECORD, "--store", str(store), cwd=tmp_path))
    for name in os.listdir(store):
        if name.startswith("taskstore.db"):
            os.unlink(store / name)
    (store / "taskstore.db").mkdir()
    got = ok(cli("get", "tasks", "a", "--json", "--store", str(store), cwd=tmp_path))
    assert '"first"' in got.out and "taskstore.db" in got.err
    ok(cli("put", "tasks", '{"id":"b"}', "--store", str(store), cwd=tmp_path))
    assert (store / "taskstore.db").is_dir()


@pytest.mark.parametrize(
    ("make", "args", "needle"),
    [
        (".version", ("get", "tasks", "a"), "a folder stands where a file belongs"),
        ("tasks.jsonl", ("put", "tasks", '{"id":"b"}'), "a folder stands where a file belongs"),
        ("tasks.jsonl", ("get", "tasks", "a"), "a folder stands where a file belongs"),
    ],
)
def test_a_folder_where_a_file_belongs_is_one_line(
    tmp_path: Path, make: str, args: tuple[str, ...], needle: str
) -> None:
    """Mutation: drop the OSError net of cli.main: a traceback (the API's side is the
    next test)."""
    store = tmp_path / "store"
    ok(cli("init", "--store", str(store), cwd=tmp_path))
    target = store / make
    if target.exists():
        target.unlink()
    target.mkdir()
    before = snapshot(store)
    result = cli(*args, "--store", str(store), cwd=tmp_path)
    assert_fails(result, 1, make, needle)
    assert snapshot(store) == before


def test_the_api_raises_environment_fault_for_a_folder_where_a_file_belongs(
    tmp_path: Path,
) -> None:
    """Mutation: drop the OSError conversion in Store.__init__ (.version) or in
    Engine.guarded (tasks.jsonl): IsADirectoryError."""
    with Store.open_dir(tmp_path / "store") as store:
        os.mkdir(store.file_path("tasks"))
        with pytest.raises(EnvironmentFault, match=r"tasks\.jsonl: is a directory"):
            store.collection("tasks").get("a")
    os.unlink(tmp_path / "store" / ".version")
    os.mkdir(tmp_path / "store" / ".version")
    with pytest.raises(EnvironmentFault, match=r"\.version: is a directory"):
        Store.open_dir(tmp_path / "store")


def test_a_store_in_proc_is_one_line(tmp_path: Path) -> None:
    """/proc takes no files: the store cannot be made there."""
    assert_fails(cli("put", "tasks", RECORD, "--store", "/proc", cwd=tmp_path), 1, "/proc")


def test_a_cache_deleted_mid_run_is_made_again(tmp_path: Path) -> None:
    """Mutation: none needed in the code: the test asserts the next process rebuilds."""
    with Store.open_dir(tmp_path / "store") as store:
        tasks = store.collection("tasks")
        tasks.put({"id": "a"})
        for name in os.listdir(store.path):
            if name.startswith("taskstore.db"):
                os.unlink(os.path.join(store.path, name))
        tasks.put({"id": "b"})
        assert tasks.get("a") is not None
    with Store.open_dir(tmp_path / "store") as again:
        assert sorted(r["id"] for r in again.collection("tasks").list()) == ["a", "b"]


def test_a_cache_corrupted_mid_run_is_rebuilt(tmp_path: Path) -> None:
    """Mutation: let DatabaseError through Engine.guarded: `file is not a database`."""
    with Store.open_dir(tmp_path / "store") as store:
        tasks = store.collection("tasks")
        tasks.put({"id": "a"})
    with Store.open_dir(tmp_path / "store") as store:
        tasks = store.collection("tasks")
        db = os.path.join(store.path, "taskstore.db")
        with open(db, "r+b") as handle:
            handle.write(b"\xff" * 4096)
        tasks.put({"id": "b"})
        assert sorted(r["id"] for r in tasks.list()) == ["a", "b"]
