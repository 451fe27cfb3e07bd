"""`.npy` arrays inside gzip files, the DQN-Replay encoding: streaming reads, fast atomic writes.

A DQN-Replay observation chunk is ~7 GB once decompressed, so reading parses the `.npy` header from the
gzip stream and then hands out rows block by block. Writing produces what Dopamine's
`np.save(gzip.GzipFile(fileobj=f), array)` produces once decompressed (same header, same bytes), and emits
an all-zero tail (the never-written rows of a partly filled buffer) as precompressed deflate blocks
instead of compressing gigabytes of zeros. Every problem is a `DataFileError` naming the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from jowa.atomic import atomic_file


class DataFileError(ValueError):
    """A data file that cannot be used; `path` and `problem` say which and why."""

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class NpyGzReader:
    """Sequential reader of one gzip'd `.npy`: `shape`/`dtype` from the header, then `read_rows`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self._file = gzip.open(self.path, "rb")
        except OSError as exc:
            raise DataFileError(self.path, f"cannot open: {exc}") from exc
        try:
            version = np.lib.format.read_magic(self._file)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(self._file)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(self._file)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except (OSError, EOFError, zlib.error) as exc:
            self._file.close()
            raise DataFileError(self.path, f"corrupt or truncated gzip stream ({exc})") from exc
        except ValueError as exc:
            self._file.close()
            raise DataFileError(self.path, f"not a .npy array ({exc})") from exc
        if fortran or dtype.hasobject:
            self._file.close()
            raise DataFileError(self.path, f"unsupported array layout (fortran={fortran}, dtype={dtype})")
        self.shape: tuple[int, ...] = tuple(shape)
        self.dtype: np.dtype = dtype
        self.rows_read = 0
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * dtype.itemsize

    def expect(self, dtype: str | np.dtype, shape: tuple[int | None, ...]) -> "NpyGzReader":
        """Raise unless the array has this dtype and shape (None matches any length on that axis)."""
        ok = len(shape) == len(self.shape) and all(s is None or s == t for s, t in zip(shape, self.shape))
        if np.dtype(dtype) != self.dtype or not ok:
            want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
            raise DataFileError(self.path, f"expected {np.dtype(dtype)}{want}, found {self.dtype}{self.shape}")
        return self

    def read_rows(self, count: int) -> np.ndarray:
        """The next `count` rows along axis 0 (a new array)."""
        count = min(count, self.shape[0] - self.rows_read) if self.shape else 1
        nbytes = count * self._row_bytes if self.shape else self.dtype.itemsize
        try:
            data = self._file.read(nbytes)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFileError(self.path, f"corrupt or truncated gzip stream ({exc})") from exc
        if len(data) != nbytes:
            raise DataFileError(
                self.path, f"truncated: header says {self.shape}, data ends after {self.rows_read} + "
                f"{len(data) // max(self._row_bytes, 1)} rows")
        self.rows_read += count
        return np.frombuffer(data, dtype=self.dtype).reshape((count, *self.shape[1:]) if self.shape else ())

    def check_end(self) -> None:
        """Raise unless the stream ends right here with a valid gzip trailer (CRC and length)."""
        try:
            extra = self._file.read(1)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFileError(self.path, f"corrupt or truncated gzip stream ({exc})") from exc
        if extra:
            raise DataFileError(self.path, "trailing data after the array")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "NpyGzReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_npy_gz(path: str | os.PathLike, dtype: str | np.dtype, shape: tuple[int | None, ...]) -> np.ndarray:
    """The whole array, checked against dtype/shape, with the gzip trailer verified."""
    with NpyGzReader(path) as reader:
        reader.expect(dtype, shape)
        array = reader.read_rows(reader.shape[0] if reader.shape else 1)
        reader.check_end()
    return array


# --- writing -------------------------------------------------------------------------------------------

_ZERO_BLOCK = 1 << 24  # bytes of zeros per precompressed deflate block
_zero_block_cache: dict[int, bytes] = {}


def _compressed_zero_block(level: int) -> bytes:
    """Raw deflate blocks for _ZERO_BLOCK zero bytes, ending byte-aligned with no back-references out."""
    if level not in _zero_block_cache:
        comp = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        _zero_block_cache[level] = comp.compress(bytes(_ZERO_BLOCK)) + comp.flush(zlib.Z_FULL_FLUSH)
    return _zero_block_cache[level]


def _crc32_operator_square(op: list[int]) -> list[int]:
    return [_gf2_apply(op, op[i]) for i in range(32)]


def _gf2_apply(op: list[int], vec: int) -> int:
    out, i = 0, 0
    while vec:
        if vec & 1:
            out ^= op[i]
        vec >>= 1
        i += 1
    return out


def crc32_append_zeros(crc: int, count: int) -> int:
    """zlib.crc32(data + bytes(count)) from crc = zlib.crc32(data), in O(log count) (GF(2) operators)."""
    op = [0xEDB88320] + [1 << i for i in range(31)]  # one zero bit shifted through the CRC register
    for _ in range(3):
        op = _crc32_operator_square(op)  # → one zero byte
    reg = crc ^ 0xFFFFFFFF
    while count:
        if count & 1:
            reg = _gf2_apply(op, reg)
        count >>= 1
        if count:
            op = _crc32_operator_square(op)
    return reg ^ 0xFFFFFFFF


def _zero_tail_bytes(data: memoryview) -> int:
    """Length of the all-zero suffix of `data`, in whole _ZERO_BLOCK units (0 for small buffers)."""
    flat = np.frombuffer(data, dtype=np.uint8)
    end = len(flat)
    while end >= _ZERO_BLOCK and not flat[end - _ZERO_BLOCK:end].any():
        end -= _ZERO_BLOCK
    return len(flat) - end


def save_npy_gz(path: str | os.PathLike, array: np.ndarray, compresslevel: int = 6) -> None:
    """Write `array` as np.save would, gzip-compressed, to a temporary name then rename it into place.

    The decompressed bytes equal Dopamine's `np.save(GzipFile(...), array)`. Dopamine used gzip's default
    level 9; the level only changes the compressed size (level 6 is ~4× faster on Atari frames for
    ~8 % more bytes). The gzip header carries mtime 0 and no file name, so output is deterministic.
    """
    path = Path(path)
    array = np.asarray(array)
    array = array if array.flags.c_contiguous else array.copy(order="C")  # (ascontiguousarray makes 0-d 1-d)
    header = _npy_header(array)
    data = memoryview(array).cast("B") if array.nbytes else memoryview(b"")
    zero_tail = _zero_tail_bytes(data)
    head = data[: len(data) - zero_tail]
    comp = zlib.compressobj(compresslevel, zlib.DEFLATED, -zlib.MAX_WBITS)
    crc = zlib.crc32(head, zlib.crc32(header))
    with atomic_file(path) as tmp, open(tmp, "wb") as out:
        xfl = 2 if compresslevel == 9 else 4 if compresslevel == 1 else 0  # as gzip.GzipFile writes it
        out.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + bytes([xfl, 255]))
        out.write(comp.compress(header))
        for start in range(0, len(head), _ZERO_BLOCK):
            out.write(comp.compress(head[start:start + _ZERO_BLOCK]))
        if zero_tail:
            # A full flush resets the compressor's history, so the precompressed zero blocks (which
            # reference nothing before themselves) can follow, then the compressor simply ends the stream.
            out.write(comp.flush(zlib.Z_FULL_FLUSH))
            block = _compressed_zero_block(compresslevel)
            for _ in range(zero_tail // _ZERO_BLOCK):
                out.write(block)
            crc = crc32_append_zeros(crc, zero_tail)
        out.write(comp.flush(zlib.Z_FINISH))
        out.write(struct.pack("<II", crc & 0xFFFFFFFF, (len(header) + len(data)) & 0xFFFFFFFF))


def _npy_header(array: np.ndarray) -> bytes:
    """The exact header bytes np.save writes for `array` (format 1.0, or 2.0 when it does not fit)."""
    import io

    info = np.lib.format.header_data_from_array_1_0(array)
    buf = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buf, info)
    except ValueError:
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, info)
    return buf.getvalue()
