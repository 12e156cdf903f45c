"""Reading the weights (.npz) and input (.npy) arrays a user gives, without trusting them.

Every .npy header (a file's, or each member's of an .npz) is read and checked before any array data is
allocated: its dtype, its shape, the bytes it promises against the bytes the file holds, and the total against
the caller's memory budget. Only then is the data read, in chunks, into one array of exactly that size.
Every problem is a `WeightsError` naming the file (and the member), never a traceback.
"""
from __future__ import annotations

import io
import os
import stat
import struct
import sys
import tokenize
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from math import prod
from typing import IO, Any, BinaryIO, Mapping, cast

import numpy as np
from numpy.lib import format as npy_format

from cnncalc.errors import WeightsError
from cnncalc.units import human_bytes

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # an archive with members; an empty archive
MAX_HEADER_BYTES = 10_000  # numpy.load's own limit (its max_header_size)
MAX_NDIM = 32              # NumPy 1.x's limit; 2.x allows 64
CHUNK_BYTES = 1 << 20
IGNORED_SUFFIX = "num_batches_tracked"  # PyTorch's BatchNorm counter: in state_dicts, not used by cnncalc

# What reading a zip member can raise on damaged data; zipfile reports a bad CRC as BadZipFile.
_ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, struct.error,
                    NotImplementedError, RuntimeError)
_HEADER_ERRORS = (ValueError, SyntaxError, TypeError, tokenize.TokenError)


@dataclass(frozen=True)
class ArrayHeader:
    """What a .npy header says: the array's shape and dtype, and the data bytes it promises."""

    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int
    fortran_order: bool = False


class _Refused(Exception):
    """A problem with one array, to be worded with its file (and member) by the caller."""

    def __init__(self, problem: str, fix: str | None = None):
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class _Source:
    path: str    # as the user gave it
    kind: str    # "weights" or "input"
    option: str  # the CLI option that named it

    @property
    def rewrite(self) -> str:
        if self.kind == "weights":
            return "Write it again with numpy.savez(path, **state_dict); a file cut short or damaged (e.g. by an " \
                   "interrupted copy) cannot be repaired."
        return "Write it again with numpy.save(path, x); a file cut short or damaged (e.g. by an interrupted " \
               "copy) cannot be repaired."

    def error(self, problem: str, fix: str | None = None) -> WeightsError:
        return WeightsError(f"cannot read {self.kind} from '{self.path}': {problem}", fix=fix or self.rewrite)

    def refused(self, subject: str, refusal: _Refused) -> WeightsError:
        return self.error(f"{subject} {refusal.problem}", refusal.fix)


# ---- public API ---------------------------------------------------------------------------------------------

def read_npz_headers(path: str | os.PathLike[str], *, option: str = "--weights") -> dict[str, ArrayHeader]:
    """The header of every array in an .npz, by name (without '.npy', as numpy.load names them)."""
    source = _Source(os.fspath(path), "weights", option)
    with _open(source) as handle, _open_zip(source, handle) as archive:
        return {name: header for name, (_, header) in _scan_npz(source, archive).items()}


def load_npz(path: str | os.PathLike[str], expected: Mapping[str, tuple[int, ...]], dtype: str | np.dtype, *,
             max_bytes: int, option: str = "--weights") -> dict[str, np.ndarray]:
    """The arrays named in `expected`, checked against it and the budget from their headers, then read.

    Returns C-contiguous arrays of `dtype`, in the order of `expected`.
    """
    source = _Source(os.fspath(path), "weights", option)
    target = np.dtype(dtype)
    expected = {name: tuple(shape) for name, shape in expected.items()}
    with _open(source) as handle, _open_zip(source, handle) as archive:
        members = _scan_npz(source, archive)
        headers = {name: header for name, (_, header) in members.items()}
        _check_names(source, headers, expected)
        _check_weight_dtypes(source, {name: headers[name] for name in expected})
        _check_budget(source, [headers[name] for name in expected], target, max_bytes)
        return {name: _read_member(source, archive, name, *members[name], target) for name in expected}


def read_npy_header(path: str | os.PathLike[str], *, option: str = "--input") -> ArrayHeader:
    """The header of a .npy file, checked against the file's size."""
    source = _Source(os.fspath(path), "input", option)
    with _open(source) as handle:
        return _npy_header(source, handle)


def load_npy(path: str | os.PathLike[str], dtype: str | np.dtype, *, max_bytes: int,
             option: str = "--input") -> np.ndarray:
    """One real (integer or floating) array from a .npy, as a C-contiguous array of `dtype`.

    The caller checks the shape against the network.
    """
    source = _Source(os.fspath(path), "input", option)
    target = np.dtype(dtype)
    with _open(source) as handle:
        header = _npy_header(source, handle)
        problem = _dtype_problem(header.dtype, "fiu")
        if problem:
            what, fix = problem
            raise WeightsError(f"the input '{source.path}' holds {what}, not real numbers", fix=fix)
        if not header.shape:
            raise WeightsError(f"the input '{source.path}' holds a single number (a 0-d array), not a batch",
                               fix="Save an array with the batch axis first: numpy.save(path, x), x of shape "
                                   "[N, ...] as the spec's input.")
        _check_budget(source, [header], target, max_bytes)
        try:
            data = _read_data(handle, header)
        except _Refused as refusal:
            raise source.refused("the file", refusal) from None
        except OSError as err:
            raise source.error(f"the file could not be read ({err})") from None
    return np.ascontiguousarray(data, dtype=target)


# ---- files --------------------------------------------------------------------------------------------------

def _open(source: _Source) -> io.BufferedReader:
    """The user's file, open for reading; a missing, empty or special file is refused here."""
    ext = ".npz" if source.kind == "weights" else ".npy"
    try:
        info = os.stat(source.path)
    except (FileNotFoundError, NotADirectoryError):
        raise WeightsError(f"no such {source.kind} file '{source.path}'",
                           fix=f"Check the path given to {source.option}.") from None
    except OSError as err:
        raise source.error(err.strerror or str(err), fix=f"Check the path given to {source.option}.") from None
    if stat.S_ISDIR(info.st_mode):
        raise WeightsError(f"the {source.kind} path '{source.path}' is a directory, not a file",
                           fix=f"Give {source.option} a {ext} file.")
    if not stat.S_ISREG(info.st_mode):
        raise WeightsError(f"the {source.kind} path '{source.path}' is not a regular file (a pipe or device?)",
                           fix=f"Save the arrays to a {ext} file and give {source.option} that file.")
    if info.st_size == 0:
        raise WeightsError(f"the {source.kind} file '{source.path}' is empty (0 bytes)", fix=source.rewrite)
    try:
        return open(source.path, "rb")
    except OSError as err:
        raise source.error(err.strerror or str(err), fix="Check the file's permissions.") from None


def _open_zip(source: _Source, handle: BinaryIO) -> zipfile.ZipFile:
    start = handle.read(len(NPY_MAGIC))
    handle.seek(0)
    if start == NPY_MAGIC:
        raise WeightsError(f"the weights file '{source.path}' holds a single array, not named weights",
                           fix="Save a dict with numpy.savez(path, **state_dict).")
    try:
        return zipfile.ZipFile(handle)
    except _ZIP_READ_ERRORS as err:
        if any(magic.startswith(start[:len(magic)]) for magic in ZIP_MAGICS):
            raise source.error(f"the .npz (zip) archive is truncated or damaged ({err})") from None
        raise source.error(f"it is not a .npz file (numpy.savez writes a zip archive; this starts with {start!r})",
                           fix="Give a .npz written by numpy.savez(path, **state_dict) (or by cnncalc "
                               "--save-weights).") from None


def _scan_npz(source: _Source, archive: zipfile.ZipFile) -> dict[str, tuple[zipfile.ZipInfo, ArrayHeader]]:
    """Every member's zip entry and checked .npy header, by name."""
    members: dict[str, tuple[zipfile.ZipInfo, ArrayHeader]] = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename.removesuffix(".npy")
        subject = f"member '{name}'"
        if name in members:
            raise source.error(f"it holds {subject} twice")
        if info.flag_bits & 0x1:
            raise source.error(f"{subject} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise source.error(f"{subject} is compressed with zip method {info.compress_type}, not as numpy.savez "
                               "or numpy.savez_compressed write", fix=source.rewrite)
        try:
            with archive.open(info) as member:
                header = _parse_header(member, info.file_size)
        except _Refused as refusal:
            if info.filename.endswith(".pkl"):  # torch.save's zip format: data.pkl plus raw storages
                refusal = _Refused(refusal.problem + "; this looks like a PyTorch checkpoint (torch.save)",
                                   "Convert it: numpy.savez(path, **{k: v.numpy() for k, v in "
                                   "torch.load(checkpoint).items()}).")
            raise source.refused(subject, refusal) from None
        except _ZIP_READ_ERRORS as err:
            raise source.error(f"{subject} is damaged ({_zip_problem(err)})") from None
        members[name] = (info, header)
    return members


def _read_member(source: _Source, archive: zipfile.ZipFile, name: str, info: zipfile.ZipInfo,
                 header: ArrayHeader, target: np.dtype) -> np.ndarray:
    subject = f"member '{name}'"
    try:
        with archive.open(info) as member:
            again = _parse_header(member, info.file_size)
            if again != header:
                raise _Refused("changed while it was being read")
            data = _read_data(cast(zipfile.ZipExtFile, member), header)  # what open() gives (typed IO[bytes])
            # The headers were checked to describe the whole member, so this read reaches its end, where
            # zipfile checks the CRC; it returns nothing.
            member.read(1)
    except _Refused as refusal:
        raise source.refused(subject, refusal) from None
    except _ZIP_READ_ERRORS as err:
        raise source.error(f"{subject} is damaged ({_zip_problem(err)})") from None
    return np.ascontiguousarray(data, dtype=target)


def _zip_problem(err: Exception) -> str:
    if isinstance(err, zipfile.BadZipFile) and "CRC" in str(err):
        return "its CRC-32 checksum does not match its data"
    if isinstance(err, zlib.error):
        return f"its compressed data does not decompress: {err}"
    return _clip(str(err) or type(err).__name__)


def _npy_header(source: _Source, handle: BinaryIO) -> ArrayHeader:
    start = handle.read(len(ZIP_MAGICS[0]))
    handle.seek(0)
    if start in ZIP_MAGICS:
        raise WeightsError(f"the input '{source.path}' is a .npz archive of named arrays{_names(handle)}, "
                           "not a single array",
                           fix=f"Give {source.option} a .npy written by numpy.save(path, x); to use one array of "
                               "the archive: numpy.save('x.npy', numpy.load(path)['name']).")
    try:
        header = _parse_header(handle, os.fstat(handle.fileno()).st_size)
    except _Refused as refusal:
        raise source.refused("the file", refusal) from None
    except OSError as err:
        raise source.error(f"the file could not be read ({err})") from None
    return header


def _names(handle: BinaryIO, most: int = 5) -> str:
    """' (a, b, c)': the first few member names of a zip, or '' if it cannot be listed."""
    try:
        with zipfile.ZipFile(handle) as archive:
            names = [name.removesuffix(".npy") for name in archive.namelist()]
    except _ZIP_READ_ERRORS:
        return ""
    if not names:
        return ""
    shown = ", ".join(names[:most]) + (f", ... ({len(names)} in all)" if len(names) > most else "")
    return f" ({shown})"


# ---- .npy headers and data ----------------------------------------------------------------------------------

def _read_exact(stream: IO[bytes], size: int) -> bytes:
    """Up to `size` bytes; fewer only at the end of the stream (zip members may return short reads)."""
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _parse_header(stream: IO[bytes], available: int) -> ArrayHeader:
    """Read and check the .npy header at the start of `stream`, whose array holds `available` bytes in all.

    Leaves `stream` at the array's data. Refuses (raises _Refused) a malformed header, an impossible shape,
    object arrays, and data longer or shorter than the header promises.
    """
    magic = _read_exact(stream, len(NPY_MAGIC) + 2)
    if not magic:
        raise _Refused("is empty, not a NumPy array")
    if not NPY_MAGIC.startswith(magic[:len(NPY_MAGIC)]):
        raise _Refused(f"is not a NumPy array (.npy): it starts with {magic!r}")
    if len(magic) < len(NPY_MAGIC) + 2:
        raise _Refused("is truncated inside its .npy header")
    version = npy_format.read_magic(io.BytesIO(magic))
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise _Refused(f"is in .npy format version {version[0]}.{version[1]}, which cnncalc does not read")
    # Read the header's length ourselves: numpy reads as many bytes as the (up to 4 GiB) length field says
    # before it checks max_header_size, and a real file's read(n) allocates n bytes up front.
    length_format = "<H" if version == (1, 0) else "<I"
    length_field = _read_exact(stream, struct.calcsize(length_format))
    if len(length_field) < struct.calcsize(length_format):
        raise _Refused("is truncated inside its .npy header")
    (length,) = struct.unpack(length_format, length_field)
    offset = len(magic) + len(length_field) + length
    if length > MAX_HEADER_BYTES:
        raise _Refused(f"has a .npy header of {length:,} bytes; numpy.save writes about 128 (numpy.load refuses "
                       f"more than {MAX_HEADER_BYTES:,})")
    if offset > available:
        raise _Refused("is truncated inside its .npy header")
    text = _read_exact(stream, length)
    if len(text) < length:
        raise _Refused("is truncated inside its .npy header")
    # Format 3.0 differs from 2.0 only in decoding the header as UTF-8 rather than Latin-1, which matters only
    # for non-ASCII field names of structured dtypes, refused below either way.
    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "created on Python 2": such headers are read fine
            shape, fortran_order, dtype = read_header(io.BytesIO(length_field + text))
    except _HEADER_ERRORS as err:
        reason = err.args[0] if isinstance(err, tokenize.TokenError) else str(err)  # TokenError: (text, place)
        raise _Refused(f"has a malformed .npy header ({_clip(reason or type(err).__name__)})") from None
    header = _checked_header(shape, fortran_order, dtype)
    present = available - offset
    if present < header.nbytes:
        raise _Refused(f"is truncated (the header promises {header.nbytes:,} bytes, {present:,} are there)")
    if present > header.nbytes:
        raise _Refused(f"holds {present - header.nbytes:,} bytes more than its header describes (shape "
                       f"{list(header.shape)} of {header.dtype}): it is damaged, or was not written by numpy.save")
    return header


def _checked_header(shape: tuple[Any, ...], fortran_order: bool, dtype: np.dtype) -> ArrayHeader:
    if any(isinstance(d, bool) for d in shape):  # numpy's own check takes True for 1
        raise _Refused(f"has a malformed .npy header (shape {shape!r})")
    if len(shape) > MAX_NDIM:
        raise _Refused(f"has {len(shape)} dimensions in its header; cnncalc reads at most {MAX_NDIM}")
    if any(d < 0 for d in shape):
        raise _Refused(f"has a negative dimension in its header (shape {list(shape)})")
    if dtype.hasobject:
        raise _Refused("holds Python objects (a pickled object array), which cnncalc never unpickles",
                       "Save numbers instead, e.g. x.astype(numpy.float32).")
    # NumPy refuses an array whose dimensions, zeros aside, multiply past its address space.
    if prod(max(d, 1) for d in shape) * max(dtype.itemsize, 1) > sys.maxsize:
        raise _Refused(f"has an impossible shape in its header ({list(shape)} of {dtype})")
    return ArrayHeader(tuple(shape), dtype, prod(shape) * dtype.itemsize, fortran_order)


def _read_data(stream: io.BufferedIOBase, header: ArrayHeader) -> np.ndarray:
    """The array the (checked) header describes, read from `stream` positioned at its data."""
    try:
        flat = np.empty(prod(header.shape), dtype=header.dtype)
    except MemoryError:
        raise _Refused(f"needs {_bytes(header.nbytes)}, more than this machine can give",
                       "Free some memory, or use a smaller file.") from None
    buffer = flat.view(np.uint8).data
    done = 0
    while done < header.nbytes:
        got = stream.readinto(buffer[done:done + CHUNK_BYTES])
        if not got:
            raise _Refused(f"is truncated (the header promises {header.nbytes:,} bytes, {done:,} are there)")
        done += got
    if header.fortran_order:
        return flat.reshape(header.shape[::-1]).T
    return flat.reshape(header.shape)


def _bytes(n: int) -> str:
    return f"{n:,} bytes" + (f" ({human_bytes(n)})" if n >= 1024 else "")


def _clip(text: str, most: int = 160) -> str:
    """One line of at most about `most` characters (numpy quotes whole headers, padding and all)."""
    text = " ".join(text.split())
    return text if len(text) <= most else text[:most] + "..."


# ---- checks against the caller's expectations ---------------------------------------------------------------

def _dtype_problem(dtype: np.dtype, kinds: str) -> tuple[str, str] | None:
    """(what the array holds, the fix) when its dtype is not of `kinds` ('f' floating, 'i'/'u' integers)."""
    if dtype.kind in kinds:
        return None
    numbers = "Save real numbers, e.g. x.astype(numpy.float32)."
    if dtype.kind == "c":
        return (f"complex numbers ({dtype.name})",
                "cnncalc computes with real numbers; save the real part (x.real) or the magnitude (abs(x)).")
    if dtype.kind == "b":
        return "booleans", numbers
    if dtype.kind in "iu":
        return f"integers ({dtype.name})", "Save floating-point arrays, e.g. x.astype(numpy.float32)."
    if dtype.kind in "SUT":
        return f"strings ({dtype})", numbers
    if dtype.kind in "Mm":
        return f"dates or times ({dtype})", numbers
    if dtype.names is not None:
        return f"a structured array (fields {', '.join(dtype.names)})", "Save each field as its own array."
    return f"values of type {dtype}", numbers


def _check_names(source: _Source, found: Mapping[str, ArrayHeader],
                 expected: Mapping[str, tuple[int, ...]]) -> None:
    """Every missing, unexpected and mis-shaped key, in one message."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected and not k.endswith(IGNORED_SUFFIX)]
    wrong = [f"{k} expected {list(shape)} found {list(found[k].shape)}"
             for k, shape in expected.items() if k in found and found[k].shape != shape]
    problems = []
    if missing:
        problems.append("missing: " + ", ".join(f"{k} {list(expected[k])}" for k in missing))
    if unexpected:
        problems.append("unexpected: " + ", ".join(unexpected))
    if wrong:
        problems.append("mis-shaped: " + "; ".join(wrong))
    if problems:
        raise WeightsError(f"the weights in '{source.path}' do not fit the network: " + " | ".join(problems),
                           fix="Keys are '<layer name>.weight', '.bias', '.running_mean', '.running_var' in "
                               "PyTorch layouts; `cnncalc verify --save-weights` writes a template.")


def _check_weight_dtypes(source: _Source, headers: Mapping[str, ArrayHeader]) -> None:
    bad = {name: problem for name, header in headers.items() if (problem := _dtype_problem(header.dtype, "f"))}
    if bad:
        listed = ", ".join(f"{name} holds {what}" for name, (what, _) in bad.items())
        raise WeightsError(f"the weights in '{source.path}' are not real floating point: {listed}",
                           fix="Save float32 arrays: numpy.savez(path, **{k: v.astype(numpy.float32) for k, v in "
                               "state_dict.items()}).")


def _check_budget(source: _Source, headers: list[ArrayHeader], target: np.dtype, max_bytes: int) -> None:
    """The arrays' bytes in memory (as stored or as `target`, whichever is larger) against the budget."""
    need = sum(prod(h.shape) * max(h.dtype.itemsize, target.itemsize) for h in headers)
    if need > max_bytes:
        raise WeightsError(f"the {source.kind} in '{source.path}' would take {_bytes(need)} of memory, more than the "
                           f"{_bytes(max_bytes)} allowed",
                           fix="Check that it is the file you meant (its headers describe arrays this large), or "
                               "raise the memory limit.")
