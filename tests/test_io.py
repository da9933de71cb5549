"""hct.io: the one atomic writer (threads and processes each write a temporary of their own) and file digests."""

import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from hct.io import atomic_write, file_sha256
from tests.paths import REPO


def test_text_bytes_and_a_writer_function_land_whole_and_readable(tmp_path):
    assert atomic_write(tmp_path / "a" / "card.json", '{"x": 1}').read_text() == '{"x": 1}'  # folder made
    assert atomic_write(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    atomic_write(tmp_path / "c.npz", lambda tmp: np.savez(tmp, values=np.arange(3)))  # savez adds no suffix
    assert np.load(tmp_path / "c.npz")["values"].tolist() == [0, 1, 2]
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.bin", "c.npz", "card.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = atomic_write(tmp_path / "status.json", "old")

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["status.json"]


def _write_many(args):
    path, tag = args
    for _ in range(50):
        atomic_write(path, tag * 10_000)


def test_threads_and_processes_writing_one_file_never_leave_half_of_it(tmp_path):
    target = tmp_path / "shared.txt"
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(_write_many, [(target, tag) for tag in "abcd"]))
    # two processes at once (started fresh: under AppTest the test process's __main__ is a page, so no spawn pool)
    script = "import sys\nfrom hct.io import atomic_write\nfor _ in range(50): atomic_write(sys.argv[1], sys.argv[2] * 10_000)"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [subprocess.Popen([sys.executable, "-c", script, str(target), tag], env=env) for tag in "ef"]
    assert [process.wait(timeout=120) for process in processes] == [0, 0]
    text = target.read_text()
    assert len(text) == 10_000 and len(set(text)) == 1 and [p.name for p in tmp_path.iterdir()] == ["shared.txt"]


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path):
    data = bytes(range(256)) * 5000  # more than one 1 MiB chunk
    assert file_sha256(atomic_write(tmp_path / "w", data)) == hashlib.sha256(data).hexdigest()
