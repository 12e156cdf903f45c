"""Reading user-given weights (.npz) and input (.npy): every bad file is a WeightsError, checked before reading."""
from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from cnncalc.arrayfiles import ArrayHeader, load_npy, load_npz, read_npy_header, read_npz_headers
from cnncalc.errors import CnnCalcError, WeightsError

BUDGET = 1 << 30
STATE = {
    "conv1.weight": np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) / 7,
    "conv1.bias": np.array([0.5, -1.5], dtype=np.float32),
    "bn.running_var": np.ones(2, dtype=np.float64),
}
EXPECTED = {name: array.shape for name, array in STATE.items()}


def npy_bytes(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


def raw_npy(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """A .npy whose header text is exactly `header` (for headers numpy.save would never write)."""
    text = header.encode("latin1")
    length = struct.pack("<H" if version == (1, 0) else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text + data


def zip_of(path, members: dict[str, bytes], compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def weights_error(call, *args, **kwargs) -> str:
    """The message of the WeightsError `call` raises (anything else fails the test)."""
    with pytest.raises(WeightsError) as err:
        call(*args, **kwargs)
    assert isinstance(err.value, CnnCalcError)
    return str(err.value)


# ---- good files ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_savez_files_round_trip(tmp_path, save, dtype):
    path = tmp_path / "w.npz"
    save(path, **STATE, **{"bn.num_batches_tracked": np.array(7)})  # PyTorch's counter is ignored
    expected = dict(reversed(EXPECTED.items()))
    loaded = load_npz(path, expected, dtype, max_bytes=BUDGET)
    assert list(loaded) == list(expected)
    for name, array in loaded.items():
        assert array.dtype == np.dtype(dtype) and array.flags.c_contiguous and array.flags.writeable
        np.testing.assert_array_equal(array, STATE[name].astype(dtype))


def test_npz_headers_are_named_as_numpy_load_names_them(tmp_path):
    np.savez(tmp_path / "w.npz", **STATE)
    headers = read_npz_headers(tmp_path / "w.npz")
    assert list(headers) == list(np.load(tmp_path / "w.npz").files) == list(STATE)
    assert headers["conv1.weight"] == ArrayHeader((2, 3, 3, 3), np.dtype(np.float32), 216)
    assert headers["bn.running_var"].nbytes == 16


def test_fortran_order_and_big_endian_arrays_load_correctly(tmp_path):
    weight = np.asfortranarray(STATE["conv1.weight"])
    bias = STATE["conv1.bias"].astype(">f4")
    np.savez(tmp_path / "w.npz", **{"conv1.weight": weight, "conv1.bias": bias})
    assert read_npz_headers(tmp_path / "w.npz")["conv1.weight"].fortran_order
    loaded = load_npz(tmp_path / "w.npz", {"conv1.weight": weight.shape, "conv1.bias": bias.shape}, "float32",
                      max_bytes=BUDGET)
    assert loaded["conv1.weight"].flags.c_contiguous and loaded["conv1.bias"].dtype == np.dtype("=f4")
    np.testing.assert_array_equal(loaded["conv1.weight"], STATE["conv1.weight"])
    np.testing.assert_array_equal(loaded["conv1.bias"], STATE["conv1.bias"])

    x = np.asfortranarray(np.arange(24, dtype=np.float64).reshape(2, 3, 4))
    np.save(tmp_path / "x.npy", x)
    assert read_npy_header(tmp_path / "x.npy") == ArrayHeader((2, 3, 4), np.dtype(np.float64), 192, True)
    got = load_npy(tmp_path / "x.npy", "float32", max_bytes=BUDGET)
    assert got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.int16, np.float16, np.float64])
def test_integer_and_float_inputs_are_converted(tmp_path, dtype):
    x = np.arange(12).reshape(3, 4).astype(dtype)
    np.save(tmp_path / "x.npy", x)
    got = load_npy(tmp_path / "x.npy", "float32", max_bytes=BUDGET)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, x.astype(np.float32))


def test_zero_size_arrays_load(tmp_path):
    np.savez(tmp_path / "w.npz", **{"fc.weight": np.zeros((0, 3), np.float32)})
    loaded = load_npz(tmp_path / "w.npz", {"fc.weight": (0, 3)}, "float64", max_bytes=BUDGET)
    assert loaded["fc.weight"].shape == (0, 3) and loaded["fc.weight"].dtype == np.float64
    np.save(tmp_path / "x.npy", np.zeros((0, 3), np.int8))
    assert load_npy(tmp_path / "x.npy", "float32", max_bytes=0).shape == (0, 3)  # the caller checks the batch


# ---- paths --------------------------------------------------------------------------------------------------

def test_missing_files_and_directories(tmp_path):
    message = weights_error(load_npz, tmp_path / "nope.npz", EXPECTED, "float32", max_bytes=BUDGET)
    assert "no such weights file" in message and "--weights" in message
    message = weights_error(load_npy, tmp_path / "nope.npy", "float32", max_bytes=BUDGET, option="--data")
    assert "no such input file" in message and "--data" in message
    assert "is a directory" in weights_error(load_npz, tmp_path, EXPECTED, "float32", max_bytes=BUDGET)
    assert "is a directory" in weights_error(read_npy_header, tmp_path)


def test_the_file_is_named_as_the_user_gave_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    zip_of(tmp_path / "w.npz", {"conv1.weight.npy": b"hello"})
    assert "'w.npz'" in weights_error(load_npz, "w.npz", EXPECTED, "float32", max_bytes=BUDGET)


@pytest.mark.parametrize("name", ["w.npz", "x.npy"])
def test_empty_files(tmp_path, name):
    path = write(tmp_path / name, b"")
    assert "is empty" in weights_error(load_npz, path, EXPECTED, "float32", max_bytes=BUDGET)
    assert "is empty" in weights_error(load_npy, path, "float32", max_bytes=BUDGET)


def test_a_npy_given_for_weights_and_a_npz_given_for_input(tmp_path):
    np.save(tmp_path / "x.npy", STATE["conv1.bias"])
    message = weights_error(load_npz, tmp_path / "x.npy", EXPECTED, "float32", max_bytes=BUDGET)
    assert "holds a single array, not named weights" in message and "numpy.savez(path, **state_dict)" in message
    assert "single array" in weights_error(read_npz_headers, tmp_path / "x.npy")
    np.savez(tmp_path / "w.npz", **STATE)
    message = weights_error(load_npy, tmp_path / "w.npz", "float32", max_bytes=BUDGET)
    assert ".npz archive of named arrays (conv1.weight, conv1.bias, bn.running_var)" in message
    assert "numpy.save(" in message


def test_a_file_that_is_neither(tmp_path):
    path = write(tmp_path / "w.npz", b"not an archive at all")
    assert "is not a .npz file" in weights_error(load_npz, path, EXPECTED, "float32", max_bytes=BUDGET)
    assert "is not a NumPy array" in weights_error(load_npy, path, "float32", max_bytes=BUDGET)


# ---- truncated and damaged files ----------------------------------------------------------------------------

@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("keep", [1, 4, 40, 0.25, 0.5, 0.9, -22, -1])
def test_truncated_npz(tmp_path, save, keep):
    save(tmp_path / "w.npz", **STATE)
    data = (tmp_path / "w.npz").read_bytes()
    cut = write(tmp_path / "cut.npz", data[:int(keep * len(data)) if isinstance(keep, float) else keep])
    assert "truncated" in weights_error(load_npz, cut, EXPECTED, "float32", max_bytes=BUDGET)


def test_truncated_member_says_how_much_is_missing(tmp_path):
    member = npy_bytes(np.zeros(301, np.float32))
    path = zip_of(tmp_path / "w.npz", {"conv1.weight.npy": member[:-904]})
    message = weights_error(read_npz_headers, path)
    assert message.startswith(f"cannot read weights from '{path}': member 'conv1.weight' is truncated (the header "
                              "promises 1,204 bytes, 300 are there)")
    assert "Write it again with numpy.savez" in message
    path = zip_of(tmp_path / "h.npz", {"conv1.weight.npy": member[:30]})
    assert "member 'conv1.weight' is truncated inside its .npy header" in weights_error(read_npz_headers, path)


@pytest.mark.parametrize("keep", [3, 8, 9, 11, 60, -1, -100])
def test_truncated_npy(tmp_path, keep):
    data = npy_bytes(np.zeros((5, 5), np.float32))
    path = write(tmp_path / "x.npy", data[:keep])
    assert "truncated" in weights_error(load_npy, path, "float32", max_bytes=BUDGET)
    assert "truncated" in weights_error(read_npy_header, path)


@pytest.mark.parametrize("size", [2, 5000])
def test_a_flipped_data_byte_is_a_crc_error(tmp_path, size):
    state = dict(STATE, **{"conv1.bias": np.linspace(-1, 1, size, dtype=np.float32)})
    np.savez(tmp_path / "w.npz", **state)
    data = bytearray((tmp_path / "w.npz").read_bytes())
    at = bytes(data).find(state["conv1.bias"].tobytes())
    data[at + 4 * size - 2] ^= 0x40
    path = write(tmp_path / "w.npz", bytes(data))
    if size > 4096:  # zipfile reads 4 KiB at a time and checks the CRC at the member's end: here, not yet
        read_npz_headers(path)
    message = weights_error(load_npz, path, dict(EXPECTED, **{"conv1.bias": (size,)}), "float32",
                            max_bytes=BUDGET)
    assert "member 'conv1.bias' is damaged (its CRC-32 checksum does not match its data)" in message


def test_a_corrupt_deflate_stream(tmp_path):
    np.savez_compressed(tmp_path / "w.npz", **STATE)
    data = bytearray((tmp_path / "w.npz").read_bytes())
    with zipfile.ZipFile(tmp_path / "w.npz") as archive:
        info = archive.getinfo("conv1.weight.npy")
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    data[start:start + info.compress_size] = b"\xff" * info.compress_size  # an invalid deflate block type
    path = write(tmp_path / "w.npz", bytes(data))
    message = weights_error(load_npz, path, EXPECTED, "float32", max_bytes=BUDGET)
    assert "member 'conv1.weight' is damaged (its compressed data does not decompress" in message


def test_a_member_that_is_not_an_array(tmp_path):
    path = zip_of(tmp_path / "w.npz", {"conv1.weight.npy": npy_bytes(STATE["conv1.weight"]), "a.npy": b"hello"})
    message = weights_error(load_npz, path, EXPECTED, "float32", max_bytes=BUDGET)
    assert "member 'a' is not a NumPy array (.npy): it starts with b'hello'" in message
    assert "member 'e' is empty" in weights_error(read_npz_headers, zip_of(tmp_path / "e.npz", {"e.npy": b""}))


def test_a_pytorch_checkpoint_gets_a_hint(tmp_path):
    path = zip_of(tmp_path / "model.pt", {"archive/data.pkl": b"\x80\x02}q\x00.", "archive/version": b"3\n"})
    assert "PyTorch checkpoint" in weights_error(load_npz, path, EXPECTED, "float32", max_bytes=BUDGET)


def test_odd_archives(tmp_path):
    member = npy_bytes(STATE["conv1.bias"])
    with zipfile.ZipFile(tmp_path / "twice.npz", "w") as archive:
        archive.writestr("conv1.bias.npy", member)
        archive.writestr("conv1.bias", member)
    assert "holds member 'conv1.bias' twice" in weights_error(read_npz_headers, tmp_path / "twice.npz")
    path = zip_of(tmp_path / "bz.npz", {"conv1.bias.npy": member}, zipfile.ZIP_BZIP2)
    assert "zip method 12" in weights_error(read_npz_headers, path)


def test_data_beyond_what_the_header_describes(tmp_path):
    member = npy_bytes(STATE["conv1.bias"]) + b"\0" * 8
    path = zip_of(tmp_path / "w.npz", {"conv1.bias.npy": member})
    assert "holds 8 bytes more than its header describes" in weights_error(read_npz_headers, path)
    path = write(tmp_path / "x.npy", member)
    assert "holds 8 bytes more than its header describes" in weights_error(load_npy, path, "float32",
                                                                           max_bytes=BUDGET)


# ---- headers ------------------------------------------------------------------------------------------------

def _header(shape, descr="'<f4'") -> str:
    return f"{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}"


@pytest.mark.parametrize("npy, expected", [
    (raw_npy(_header("(-3, 4)")), "negative dimension"),
    (raw_npy(_header("(True, 4)")), "malformed .npy header"),
    (raw_npy(_header("(" + "1, " * 40 + ")")), "40 dimensions"),
    (raw_npy(_header("(2**40,)")), "malformed .npy header"),
    (raw_npy(_header("(2**62, 2**62)")), "malformed .npy header"),
    (raw_npy(_header(f"({2**62}, {2**62})")), "impossible shape"),
    (raw_npy(_header(f"(0, {2**62}, {2**62})")), "impossible shape"),
    (raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,"), "malformed .npy header"),  # TokenError
    (raw_npy("[[[[[[[[[[", version=(3, 0)), "malformed .npy header"),
    (raw_npy("{'descr': '<f4'}"), "malformed .npy header"),
    (raw_npy("42"), "malformed .npy header"),
    (raw_npy(_header("(3,)", "'not a dtype'")), "malformed .npy header"),
    (raw_npy(_header("(3,)", "[1, 2]")), "malformed .npy header"),
    (raw_npy(_header("(3,)", "'|O'")), "Python objects"),
    (raw_npy(_header("(3,)"), version=(9, 9)), "version 9.9"),
    (b"\x93NUMPY\x01\x00" + struct.pack("<H", 60_000) + b" " * 60_000, "header of 60,000 bytes"),
    (b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + b"{", "header of 4,294,967,295 bytes"),
])
def test_malformed_headers_are_refused_without_reading_on(tmp_path, npy, expected):
    tracemalloc.start()
    try:
        message = weights_error(load_npy, write(tmp_path / "x.npy", npy), "float32", max_bytes=BUDGET)
        assert expected in message
        message = weights_error(read_npz_headers, zip_of(tmp_path / "w.npz", {"a.npy": npy}))
        assert "member 'a'" in message and expected in message
        assert tracemalloc.get_traced_memory()[1] < 4 << 20
    finally:
        tracemalloc.stop()


def test_python2_headers_still_load(tmp_path):
    path = write(tmp_path / "x.npy", raw_npy(_header("(2L, 1L)"), np.float32([1, 2]).tobytes()))
    np.testing.assert_array_equal(load_npy(path, "float64", max_bytes=BUDGET), [[1], [2]])


def test_a_header_claiming_terabytes_is_refused_quickly_without_allocating(tmp_path):
    huge = raw_npy(_header("(10000000, 10000000)"), b"\0" * 16)
    npz = zip_of(tmp_path / "w.npz", {"conv1.weight.npy": huge})
    npy = write(tmp_path / "x.npy", huge)
    tracemalloc.start()
    began = time.perf_counter()
    try:
        message = weights_error(load_npz, npz, {"conv1.weight": (10**7, 10**7)}, "float32", max_bytes=2**60)
        assert "promises 400,000,000,000,000 bytes, 16 are there" in message
        assert "promises 400,000,000,000,000 bytes" in weights_error(load_npy, npy, "float32", max_bytes=2**60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - began < 0.5
    assert peak < 4 << 20


def test_the_budget_is_checked_before_reading(tmp_path):
    big = np.zeros((1024, 1024), np.float32)  # 4 MiB that compress to a few KiB
    np.savez_compressed(tmp_path / "w.npz", **{"fc.weight": big})
    np.save(tmp_path / "x.npy", big)
    tracemalloc.start()
    try:
        message = weights_error(load_npz, tmp_path / "w.npz", {"fc.weight": big.shape}, "float64",
                                max_bytes=1 << 20)
        assert "would take 8,388,608 bytes (8.00 MiB) of memory, more than the 1,048,576 bytes (1.00 MiB)" \
               in message  # counted as float64, the dtype asked for
        assert "4,194,304 bytes" in weights_error(load_npy, tmp_path / "x.npy", "float32", max_bytes=1 << 20)
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()


# ---- what the arrays hold -----------------------------------------------------------------------------------

REFUSED = {
    "complex": (np.ones((2, 3), np.complex64), "complex numbers (complex64)"),
    "object": (np.array([[1, "a"]], dtype=object), "Python objects"),
    "bool": (np.ones((2, 3), bool), "booleans"),
    "string": (np.array([["ab", "c"]]), "strings"),
    "structured": (np.zeros((2, 3), [("re", "f4"), ("im", "f4")]), "structured array (fields re, im)"),
    "datetime": (np.array([["2024-01-01"]], "datetime64[D]"), "dates or times"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_non_real_inputs_are_refused(tmp_path, case):
    array, expected = REFUSED[case]
    np.save(tmp_path / "x.npy", array, allow_pickle=True)
    assert expected in weights_error(load_npy, tmp_path / "x.npy", "float32", max_bytes=BUDGET)


@pytest.mark.parametrize("case", [*REFUSED, "int"])
def test_non_floating_weights_are_refused(tmp_path, case):
    array, expected = REFUSED.get(case, (np.ones((2, 3), np.int64), "integers (int64)"))
    np.savez(tmp_path / "w.npz", **{"fc.weight": array, "fc.bias": np.ones(2, bool)}, allow_pickle=True)
    message = weights_error(load_npz, tmp_path / "w.npz", {"fc.weight": array.shape, "fc.bias": (2,)}, "float32",
                            max_bytes=BUDGET)
    assert expected in message
    if case != "object":  # refused as soon as its header is read
        assert "fc.bias holds booleans" in message and "not real floating point" in message


def test_a_0d_input_is_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.float32(3))
    assert "a single number (a 0-d array)" in weights_error(load_npy, tmp_path / "x.npy", "float32",
                                                            max_bytes=BUDGET)


def test_names_and_shapes_are_all_reported_before_reading(tmp_path):
    state = dict(STATE, **{"extra.weight": np.zeros(2, np.float32), "bn.num_batches_tracked": np.array(0)})
    del state["conv1.bias"]
    state["conv1.weight"] = np.zeros((2, 3), np.int8)  # its dtype would be refused too, but the names come first
    np.savez(tmp_path / "w.npz", **state)
    message = weights_error(load_npz, tmp_path / "w.npz", EXPECTED, "float32", max_bytes=BUDGET)
    assert "missing: conv1.bias [2]" in message
    assert "unexpected: extra.weight" in message and "num_batches_tracked" not in message
    assert "mis-shaped: conv1.weight expected [2, 3, 3, 3] found [2, 3]" in message


# ---- anything else is still a WeightsError ------------------------------------------------------------------

@pytest.mark.parametrize("save", [np.savez, np.savez_compressed, np.save])
def test_damaged_files_raise_only_weights_errors(tmp_path, save):
    rng = np.random.default_rng(0)
    if save is np.save:
        np.save(tmp_path / "good", STATE["conv1.weight"])
        good = (tmp_path / "good.npy").read_bytes()
    else:
        save(tmp_path / "good.npz", **STATE)
        good = (tmp_path / "good.npz").read_bytes()
    for trial in range(300):
        data = bytearray(good)
        if trial % 3 == 0:
            data = data[:int(rng.integers(1, len(data)))]
        for at in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            data[at] = int(rng.integers(0, 256))
        path = write(tmp_path / "bad", bytes(data))
        try:
            if save is np.save:
                load_npy(path, "float32", max_bytes=BUDGET)
            else:
                load_npz(path, EXPECTED, "float32", max_bytes=BUDGET)
        except WeightsError:
            pass

