"""Writing output files without ever destroying one.

What `write_output` does with the path it is given:

    '-'                        stdout (sys.stdout.buffer, flushed); no file is created
    does not exist             a temporary '.<name>.*.tmp' in the same directory, fsync'd, then os.replace'd
                               into place; mode 0o666 & ~umask
    regular file (symlinks     the same, over the symlink's target (the symlink stays a symlink); the new
      followed)                file keeps the old one's permission bits (and owner/group when run as root);
                               refused if it is one of the inputs or not writable
    character device           written in place (O_WRONLY, no O_CREAT, no O_TRUNC): /dev/null discards
    FIFO                       written in place; opened non-blocking first so a FIFO nobody reads is an
                               error, not a hang
    directory, socket, block   refused
      device, anything else
    in or through /proc, /sys  refused unless it is a character device or a FIFO (so /dev/stdout on a pipe
                               works, and /proc/self/comm is never written)

Every OSError becomes a CnnCalcError naming the path; a temporary file never outlives a failure.
"""
from __future__ import annotations

import errno
import fcntl
import io
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable

from cnncalc.errors import CnnCalcError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

STDOUT = "-"
KERNEL_TREES = ("/proc", "/sys")
PERMISSIONS_FIX = "Check the path and its permissions."
ANOTHER_PATH = "Choose another path, or '-' for stdout."

Writer = Callable[[BinaryIO], object]  # writes the output to the handle it is given (what it returns is unused)


def write_output(path: str | Path, write: Writer, *,
                 inputs: Iterable[str | Path | None] = (), option: str = "--output") -> str:
    """Call `write(handle)` with a binary file object for `path` ('-' is stdout); return where it went."""
    name = os.fspath(path)
    if name == STDOUT:
        return _write_stdout(write)
    if not name:
        raise CnnCalcError(f"{option} is empty", fix="Give a file path, or '-' for stdout.")
    try:
        real, through_kernel = _resolve(name)
        st = _stat(name)
    except OSError as err:
        raise _error(name, err) from None
    kernel = through_kernel or _in_kernel_tree(real)
    if st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        return _write_in_place(name, st, write)
    if kernel:
        what = "does not exist" if st is None else f"is {_kind(st.st_mode)}"
        where = "lies in /proc or /sys" if _in_kernel_tree(real) else f"leads through /proc or /sys to {real}"
        raise CnnCalcError(f"cannot write {name}: it {where}, which {what}; through /proc and /sys cnncalc writes "
                           "only to character devices and FIFOs (such as /dev/stdout on a pipe)",
                           fix="Use '-' for stdout, or give the path of an ordinary file.")
    if st is None:
        if name.endswith("/"):
            raise CnnCalcError(f"cannot write {name}: the path ends in '/', so it names a directory",
                               fix="Give the path of a file.")
        return _replace(name, real, None, write)
    if not stat.S_ISREG(st.st_mode):
        fix = "Give the path of a file inside it." if stat.S_ISDIR(st.st_mode) else ANOTHER_PATH
        raise CnnCalcError(f"cannot write {name}: it is {_kind(st.st_mode)}; cnncalc writes only regular files, "
                           "character devices (like /dev/null) and FIFOs, and never replaces anything else",
                           fix=fix)
    check_not_input(Path(name), inputs, option)
    if not os.access(real, os.W_OK):
        raise CnnCalcError(f"cannot write {name}: it is read-only, and cnncalc does not replace a file you "
                           "cannot write", fix=f"Choose another path, or make it writable first (chmod u+w {real}) if "
                                                  "you mean to replace it.")
    return _replace(name, real, st, write)


def write_text_output(path: str | Path, text: str, *, inputs: Iterable[str | Path | None] = (),
                      option: str = "--output") -> str:
    """`write_output` for UTF-8 text."""
    data = text.encode("utf-8")
    return write_output(path, lambda handle: handle.write(data), inputs=inputs, option=option)


def check_not_input(target: Path, inputs: Iterable[str | Path | None], option: str) -> None:
    """Refuse to write over a spec, weights or input file the user gave."""
    for source in inputs:
        if source is None or os.fspath(source) in ("", STDOUT):
            continue
        try:
            same = os.path.samefile(target, source)
        except OSError:  # one of them does not exist (or cannot be looked at): not the same file
            continue
        if same:
            raise CnnCalcError(f"{option} {target} is one of the files you gave as input; cnncalc never writes "
                               "over a spec, weights or input", fix=f"Choose another path for {option}.")


def check_distinct(targets: dict[str, str | Path | None]) -> None:
    """Refuse two options (option name -> path) that would write to the same file, or both to stdout."""
    given = [(option, os.fspath(path)) for option, path in targets.items()
             if path is not None and os.fspath(path) != ""]
    for i, (first, a) in enumerate(given):
        for second, b in given[i + 1:]:
            if _same_target(a, b):
                what = f"{first} and {second} both write to stdout ('-')" if a == b == STDOUT else \
                    f"{first} {_shown(a)} and {second} {_shown(b)} are the same file"
                raise CnnCalcError(f"{what}; one output would overwrite or garble the other",
                                   fix=f"Give {first} and {second} different paths.")


# --- the three ways of writing -------------------------------------------------------------------------------

def _write_stdout(write: Writer) -> str:
    try:
        sys.stdout.flush()  # text already printed comes first
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:  # a text-only stand-in for stdout (some embedding hosts)
            collected = io.BytesIO()
            _fill(io.BufferedWriter(_Stream(collected.write)), write)
            sys.stdout.write(collected.getvalue().decode("utf-8", "replace"))
            sys.stdout.flush()
        else:
            _fill(io.BufferedWriter(_Stream(buffer.write)), write)
            buffer.flush()
    except OSError as err:
        raise _error("stdout", err) from None
    return "stdout"


def _write_in_place(name: str, st: os.stat_result, write: Writer) -> str:
    """A character device or FIFO: open it for writing as it is; never create, truncate, rename or unlink."""
    fifo = stat.S_ISFIFO(st.st_mode)
    flags = os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC | (os.O_NONBLOCK if fifo else 0)
    try:
        fd = os.open(name, flags)
    except OSError as err:
        if fifo and err.errno == errno.ENXIO:
            raise CnnCalcError(f"cannot write {name}: no process is reading the FIFO, and cnncalc does not wait "
                               "for one", fix=f"Start the reader first (for example `cat {name} &`), or choose "
                                              "another path.") from None
        raise _error(name, err) from None
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino, stat.S_IFMT(now.st_mode)) != (st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode)):
            raise CnnCalcError(f"cannot write {name}: it changed while cnncalc was opening it; left it alone",
                               fix="Try again.")
        if fifo:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        _fill(io.BufferedWriter(_Stream(lambda data: os.write(fd, data))), write)
    except OSError as err:
        raise _error(name, err) from None
    finally:
        os.close(fd)
    return name


def _replace(name: str, real: str, old: os.stat_result | None, write: Writer) -> str:
    """Fill a temporary file next to `real`, then rename it over `real` (old: what is there now, if anything)."""
    directory = os.path.dirname(real) or os.sep
    try:
        dir_st = os.stat(directory)
    except (FileNotFoundError, NotADirectoryError):
        raise CnnCalcError(f"cannot write {name}: the directory {directory} does not exist",
                           fix="Create it first, or choose another path.") from None
    except OSError as err:
        raise _error(name, err) from None
    if not stat.S_ISDIR(dir_st.st_mode):
        raise CnnCalcError(f"cannot write {name}: {directory} is not a directory", fix="Choose another path.")
    if old is not None:
        _still(name, real, old)
    mode = stat.S_IMODE(old.st_mode) if old is not None else 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".tmp", dir=directory)
    except OSError as err:
        fix = f"cnncalc writes a new file in {directory} and renames it into place, so that directory must be " \
              "writable; check its permissions, or choose another path." \
            if err.errno in (errno.EACCES, errno.EPERM) else None
        raise _error(name, err, fix=fix) from None
    try:
        try:
            _fill(os.fdopen(fd, "wb", closefd=False), write)
            if old is not None and os.geteuid() == 0:
                try:
                    os.fchown(fd, old.st_uid, old.st_gid)  # before fchmod: chown clears setuid/setgid
                except OSError:
                    pass
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        _still(name, real, old)
        os.replace(tmp, real)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise _error(name, err) from None
        raise
    _sync_directory(directory)
    return name


# --- helpers ---------------------------------------------------------------------------------------------------

class _Stream(io.RawIOBase):
    """Write-only and not seekable, whatever `sink` writes to. Devices, FIFOs and stdout are handed to `write`
    this way so nothing seeks on them: /dev/null "seeks" and always says position 0, which breaks zipfile's
    (np.savez's) offsets, and a seek on stdout redirected with `>>` would garble the archive."""

    def __init__(self, sink: Callable[[ReadableBuffer], int | None]):
        super().__init__()
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        written = self._sink(data)
        return memoryview(data).nbytes if written is None else written


def _fill(handle: BinaryIO, write: Writer) -> None:
    """Run `write` on `handle`, then close it (flushing; a file descriptor under it stays open, the caller
    closes that). If `write` fails, its exception wins over any error flushing what it left behind."""
    try:
        write(handle)
    except BaseException:
        try:
            handle.close()
        except (OSError, ValueError):
            pass
        raise
    handle.close()  # a no-op if `write` closed it already


def _still(name: str, real: str, old: os.stat_result | None) -> None:
    """Refuse to rename over `real` if it is no longer what we looked at (someone else put a file there)."""
    try:
        now = os.lstat(real)
    except FileNotFoundError:
        now = None
    except OSError as err:
        raise _error(name, err) from None
    if _identity(now) != _identity(old):
        raise CnnCalcError(f"cannot write {name}: {real} changed while cnncalc was writing; left it alone",
                           fix="Try again, or choose another path.")


def _identity(st: os.stat_result | None) -> tuple[int, int] | None:
    return None if st is None else (st.st_dev, st.st_ino)


def _resolve(name: str) -> tuple[str, bool]:
    """`name` with every symlink resolved (like os.path.realpath), and whether the way there entered /proc or
    /sys (e.g. /dev/stdout -> /proc/self/fd/1 -> a file, pipe or socket)."""
    pending = (name if os.path.isabs(name) else os.path.join(os.getcwd(), name)).split("/")
    pending.reverse()
    resolved, through, links = "/", False, 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, part)
        through = through or _in_kernel_tree(candidate)
        try:
            link = os.readlink(candidate)
        except OSError:  # not a symlink, or not there: take it as it is
            resolved = candidate
            continue
        links += 1
        if links > 40:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)
        if link.startswith("/"):
            resolved = "/"
        pending.extend(reversed(link.split("/")))
    return resolved, through


def _stat(name: str) -> os.stat_result | None:
    try:
        return os.stat(name)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _in_kernel_tree(path: str) -> bool:
    return any(path == tree or path.startswith(tree + "/") for tree in KERNEL_TREES)


def _shown(path: str) -> str:
    return "'-' (stdout)" if path == STDOUT else path


def _same_target(a: str, b: str) -> bool:
    if a == STDOUT or b == STDOUT:
        if a == b:
            return True
        other = b if a == STDOUT else a
        try:  # e.g. '-' and /dev/stdout, or '-' redirected to a file that the other option also names
            return _same_inode(os.stat(other), os.fstat(sys.stdout.fileno()))
        except (OSError, ValueError, AttributeError):  # pytest and other hosts replace stdout
            return False
    if os.path.realpath(a) == os.path.realpath(b):
        return not _is_null(a)
    try:
        return _same_inode(os.stat(a), os.stat(b))
    except OSError:
        return False


def _same_inode(x: os.stat_result, y: os.stat_result) -> bool:
    """The same file, except the null device, which any number of outputs may share."""
    if (x.st_dev, x.st_ino) != (y.st_dev, y.st_ino):
        return False
    return not (stat.S_ISCHR(x.st_mode) and x.st_rdev == _null_rdev())


def _is_null(path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == _null_rdev()


def _null_rdev() -> int | None:
    try:
        return os.stat(os.devnull).st_rdev
    except OSError:
        return None


def _umask() -> int:
    """The process umask, left as it is (read from /proc where possible; os.umask can only swap it)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _sync_directory(directory: str) -> None:
    """Make the rename durable; best effort (some file systems cannot fsync a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISREG, "a regular file"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISFIFO, "a FIFO")):
        if test(mode):
            return kind
    return "not a regular file"


_FIXES: dict[int | None, str] = {  # by OSError.errno, which may be None
    errno.EACCES: PERMISSIONS_FIX, errno.EPERM: PERMISSIONS_FIX,
    errno.ENOSPC: "Free some space, or choose another path.",
    errno.EDQUOT: "Free some space (you are over quota), or choose another path.",
    errno.EROFS: "That file system is read-only; choose another path.",
    errno.EPIPE: "Whatever was reading the output stopped before cnncalc finished; check the reader.",
    errno.ELOOP: "The path has a symlink loop; fix the links or choose another path."}


def _error(name: str, err: OSError, fix: str | None = None) -> CnnCalcError:
    return CnnCalcError(f"cannot write {name}: {err.strerror or err}", fix=fix or _FIXES.get(err.errno,
                                                                                          PERMISSIONS_FIX))
