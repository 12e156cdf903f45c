"""cnncalc never destroys a file: atomic replacement for regular files, in-place writes for devices and FIFOs,
refusal for everything else."""
from __future__ import annotations

import io
import os
import pwd
import shutil
import socket
import stat
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

from cnncalc.errors import CnnCalcError
from cnncalc.fileio import check_distinct, write_output, write_text_output

IS_ROOT = os.geteuid() == 0


@pytest.fixture
def umask():
    """Set the umask for one test and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def leftovers(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def never_called(handle) -> None:
    raise AssertionError("write was called for a target that must be refused")


# --- new and existing regular files ----------------------------------------------------------------------------

@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_mode_the_umask_gives(tmp_path, umask, mask, mode):
    umask(mask)
    target = tmp_path / "out.json"
    assert write_text_output(target, "{}\n") == str(target)
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert os.umask(mask) == mask  # reading the umask left it as it was
    assert leftovers(tmp_path) == []


def test_a_relative_path_is_written_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert write_text_output("rel.txt", "x") == "rel.txt"
    assert (tmp_path / "rel.txt").read_text() == "x"


def test_an_existing_file_keeps_its_mode_and_is_replaced_whole(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old content that is much longer than the new one\n" * 100)
    target.chmod(0o640)
    before = target.stat()
    seen = []

    def write(handle):
        seen.append(target.read_text())  # while writing, the old file is still whole
        handle.write(b"new\n")

    write_output(target, write)
    after = target.stat()
    assert target.read_bytes() == b"new\n"
    assert seen[0].startswith("old content")
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert after.st_ino != before.st_ino  # a new inode renamed into place, not the old one rewritten
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(not IS_ROOT, reason="only root can give a file away to test that its owner is kept")
def test_as_root_an_existing_file_keeps_its_owner(tmp_path):
    target = tmp_path / "owned.txt"
    target.write_text("old")
    os.chown(target, 12345, 23456)
    write_text_output(target, "new")
    assert (target.stat().st_uid, target.stat().st_gid) == (12345, 23456)


def test_numpy_writes_through_the_file_object(tmp_path):
    write_output(tmp_path / "w.npz", lambda h: np.savez(h, a=np.arange(3)))
    write_output(tmp_path / "x.npy", lambda h: np.save(h, np.ones(2)))
    assert np.load(tmp_path / "w.npz")["a"].tolist() == [0, 1, 2]
    assert np.load(tmp_path / "x.npy").tolist() == [1.0, 1.0]


def test_a_symlink_stays_a_symlink_and_its_target_is_replaced(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to("real.txt")
    write_text_output(link, "new")
    assert link.is_symlink() and os.readlink(link) == "real.txt"
    assert real.read_text() == "new" and stat.S_IMODE(real.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_a_dangling_symlink_gets_its_target_created(tmp_path):
    link = tmp_path / "link.txt"
    link.symlink_to("made.txt")
    write_text_output(link, "new")
    assert link.is_symlink() and (tmp_path / "made.txt").read_text() == "new"


def test_an_input_is_never_written_over_even_through_a_symlink(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text("spec")
    link = tmp_path / "alias.yaml"
    link.symlink_to(spec)
    for target in (spec, link):
        with pytest.raises(CnnCalcError, match="never writes over a spec"):
            write_output(target, never_called, inputs=[None, str(spec)], option="-o")
    assert spec.read_text() == "spec"


def as_unprivileged(check) -> None:
    """Run check(directory) as a user without privileges: in-process normally, or, as root (CI runs as root,
    and root ignores permission bits), in a child process switched to the user 'nobody'."""
    directory = Path(tempfile.mkdtemp(prefix="cnncalc-fileio-"))
    try:
        if not IS_ROOT:
            check(directory)
            return
        nobody = pwd.getpwnam("nobody")
        os.chown(directory, nobody.pw_uid, nobody.pw_gid)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: drop privileges, run, report through the pipe
            os.close(read)
            status = 1
            try:
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                check(directory)
                status = 0
            except BaseException:  # noqa: BLE001 - everything goes back to the parent
                os.write(write, traceback.format_exc().encode())
            finally:
                os._exit(status)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            report = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0, report
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_read_only_file_is_not_replaced():
    def check(directory):
        target = directory / "ro.txt"
        target.write_text("keep")
        target.chmod(0o444)
        with pytest.raises(CnnCalcError, match="read-only"):
            write_output(target, never_called)
        assert target.read_text() == "keep"
    as_unprivileged(check)


# --- failures leave nothing behind -----------------------------------------------------------------------------

@pytest.mark.parametrize("exception", [RuntimeError("boom"), KeyboardInterrupt(), CnnCalcError("bad")])
@pytest.mark.parametrize("exists", [False, True])
def test_a_failing_write_leaves_no_temporary_file_and_the_old_file_intact(tmp_path, exception, exists):
    target = tmp_path / "out.bin"
    if exists:
        target.write_bytes(b"old")

    def write(handle):
        handle.write(b"partial" * 10_000)
        raise exception

    with pytest.raises(type(exception)):
        write_output(target, write)
    assert leftovers(tmp_path) == []
    assert os.listdir(tmp_path) == (["out.bin"] if exists else [])
    if exists:
        assert target.read_bytes() == b"old"


def test_an_oserror_in_write_becomes_a_user_error(tmp_path):
    def write(handle):
        raise OSError(28, "No space left on device")

    with pytest.raises(CnnCalcError, match=r"cannot write .*out\.bin: No space left on device\. Free some space"):
        write_output(tmp_path / "out.bin", write)
    assert os.listdir(tmp_path) == []


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CnnCalcError, match=r"the directory .*missing does not exist\. Create it first"):
        write_text_output(tmp_path / "missing" / "out.json", "x")


def test_a_parent_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CnnCalcError, match="is not a directory"):
        write_text_output(tmp_path / "file" / "out.json", "x")
    assert (tmp_path / "file").read_text() == "x"


def test_an_unwritable_directory_is_a_clear_error():
    def check(directory):
        locked = directory / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(CnnCalcError, match=r"cannot write .*out\.json: Permission denied\."):
                write_text_output(locked / "out.json", "x")
        finally:
            locked.chmod(0o700)
        assert os.listdir(locked) == []
    as_unprivileged(check)


def test_a_failing_mkstemp_is_a_clear_error(tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(CnnCalcError) as caught:
        write_text_output(tmp_path / "out.json", "x")
    assert str(caught.value).startswith(f"cannot write {tmp_path / 'out.json'}: Permission denied. ")
    assert "must be writable" in str(caught.value)


# --- stdout, devices and FIFOs ---------------------------------------------------------------------------------

def test_dash_writes_to_stdout_and_creates_no_file(tmp_path, monkeypatch, capsysbinary):
    monkeypatch.chdir(tmp_path)
    assert write_text_output("-", "héllo\n") == "stdout"
    assert write_output("-", lambda h: h.write(b"\x00\x01")) == "stdout"
    assert capsysbinary.readouterr().out == "héllo\n".encode() + b"\x00\x01"
    assert os.listdir(tmp_path) == []


def test_dev_null_discards_and_stays_a_character_device():
    before = os.stat(os.devnull)
    assert write_text_output(os.devnull, "discarded") == os.devnull
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_numpy_archives_go_to_dev_null_and_stdout(capsysbinary):
    """/dev/null seeks but always says position 0, which broke np.savez (zipfile) before writes were streamed."""
    write_output(os.devnull, lambda h: np.savez(h, a=np.arange(5), b=np.ones(3)))
    write_output("-", lambda h: np.savez(h, a=np.arange(5)))
    assert np.load(io.BytesIO(capsysbinary.readouterr().out))["a"].tolist() == list(range(5))


def test_dev_stdout_on_a_pipe_works_in_a_real_process():
    import subprocess
    import sys
    code = "from cnncalc.fileio import write_text_output as w; print('first', flush=True); w('/dev/stdout', 'second')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"first\nsecond"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_device_is_a_clear_error():
    with pytest.raises(CnnCalcError, match="cannot write /dev/full: No space left on device"):
        write_output("/dev/full", lambda h: h.write(b"x" * 100_000))


@pytest.mark.skipif(not IS_ROOT, reason="making a device node needs root (CI runs as root)")
def test_a_character_device_node_is_written_in_place(tmp_path):
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    before = os.stat(node)
    write_output(node, lambda h: np.savez(h, a=np.arange(10)))
    after = os.stat(node)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == os.makedev(1, 3) and after.st_ino == before.st_ino
    assert os.listdir(tmp_path) == ["null"]


def read_fifo(path, into: list) -> threading.Thread:
    def run():
        with open(path, "rb") as fifo:
            into.append(fifo.read())
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_fifo_with_a_reader_gets_the_data_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = read_fifo(fifo, got)
    deadline = time.monotonic() + 5
    while True:  # the reader thread needs a moment to open its end
        try:
            write_output(fifo, lambda h: np.savez(h, a=np.arange(50_000)))  # more than a pipe holds; not seekable
            break
        except CnnCalcError as err:
            assert "no process is reading" in str(err) and time.monotonic() < deadline
            time.sleep(0.01)
    reader.join(5)
    assert np.load(io.BytesIO(got[0]))["a"].tolist() == list(range(50_000))
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe"]


def test_a_fifo_without_a_reader_is_a_quick_clear_error(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(CnnCalcError, match=r"no process is reading the FIFO.*Start the reader first"):
        write_output(fifo, never_called)
    assert time.monotonic() - start < 2
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe"]


def test_a_pipe_reached_through_proc_self_fd_works():
    """How /dev/stdout looks when stdout is a pipe: a /proc magic link to 'pipe:[...]'."""
    read_end, write_end = os.pipe()
    try:
        assert write_text_output(f"/proc/self/fd/{write_end}", "through proc") == f"/proc/self/fd/{write_end}"
        os.close(write_end)
        write_end = -1
        assert os.read(read_end, 100) == b"through proc"
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


# --- what is refused -------------------------------------------------------------------------------------------

def test_a_directory_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    for target in (tmp_path / "d", f"{tmp_path}/d/", f"{tmp_path}/new/"):
        with pytest.raises(CnnCalcError, match="directory"):
            write_output(target, never_called)
    assert os.listdir(tmp_path) == ["d"] and os.listdir(tmp_path / "d") == []


def test_a_socket_is_refused_and_kept(tmp_path):
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        with pytest.raises(CnnCalcError, match="it is a socket"):
            write_output(path, never_called)
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    finally:
        server.close()


def test_a_regular_file_under_proc_is_refused_before_any_write():
    comm = "/proc/self/comm"
    before = open(comm).read()
    assert stat.S_ISREG(os.stat(comm).st_mode)
    with pytest.raises(CnnCalcError, match="lies in /proc or /sys, which is a regular file"):
        write_output(comm, never_called)
    assert open(comm).read() == before


def test_a_regular_file_reached_through_proc_is_refused(tmp_path):
    """/dev/stdout redirected to a file: replacing that file would lose what was there (think `>>`)."""
    target = tmp_path / "log.txt"
    with open(target, "a") as log:
        log.write("earlier lines\n")
        log.flush()
        with pytest.raises(CnnCalcError, match=r"leads through /proc or /sys to .*log\.txt, which is a regular "
                                               r"file.*Use '-' for stdout"):
            write_output(f"/proc/self/fd/{log.fileno()}", never_called)
    assert target.read_text() == "earlier lines\n"


def test_nothing_is_created_under_sys():
    with pytest.raises(CnnCalcError, match="lies in /proc or /sys, which does not exist"):
        write_output("/sys/cnncalc-test-output", never_called)


# --- check_distinct --------------------------------------------------------------------------------------------

def test_check_distinct_catches_the_same_file_spelled_differently(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.npz").write_bytes(b"")
    (tmp_path / "alias.npz").symlink_to("w.npz")
    for other in (str(tmp_path / "w.npz"), "./w.npz", "alias.npz", f"{tmp_path}/sub/../w.npz"):
        with pytest.raises(CnnCalcError, match=r"--save-weights w\.npz and --save-output .* are the same file"):
            check_distinct({"--save-weights": "w.npz", "--save-output": other})
    # not there yet: the resolved paths still decide
    with pytest.raises(CnnCalcError, match="same file"):
        check_distinct({"--a": "new.npy", "--b": tmp_path / "new.npy"})


def test_check_distinct_catches_stdout_twice_and_passes_distinct_targets(tmp_path):
    with pytest.raises(CnnCalcError, match=r"--save-weights and --save-output both write to stdout"):
        check_distinct({"--output": None, "--save-weights": "-", "--save-output": "-"})
    check_distinct({"--save-weights": tmp_path / "w.npz", "--save-output": tmp_path / "y.npy", "--output": "-",
                    "--other": None})
    check_distinct({"--save-weights": os.devnull, "--save-output": os.devnull})  # discarding twice is harmless


def test_hard_links_are_the_same_file(tmp_path):
    (tmp_path / "a").write_text("x")
    os.link(tmp_path / "a", tmp_path / "b")
    with pytest.raises(CnnCalcError, match="same file"):
        check_distinct({"--x": tmp_path / "a", "--y": tmp_path / "b"})


def test_a_symlink_loop_is_a_clear_error(tmp_path):
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(CnnCalcError, match="Too many levels of symbolic links"):
        write_output(tmp_path / "loop", never_called)
    assert (tmp_path / "loop").is_symlink()
