"""Opening input files for every reader: gzip-compressed files are decompressed transparently.

Compression is told by the file's first bytes (the gzip magic ``1f 8b``), never by its name, so
``train.json.gz``, ``dev.data.gz``, ``CDR_TestSet.PubTator.txt.gz`` and a compressed file with
a plain name all read like their uncompressed form. A corrupt or truncated gzip stream is a
:class:`DataError` naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from os import PathLike
from typing import IO

from .document import DataError

__all__ = ["GZIP_MAGIC", "is_gzip", "iter_lines", "open_binary", "read_bytes"]

GZIP_MAGIC = b"\x1f\x8b"
# What a damaged gzip stream raises: a bad header or CRC (BadGzipFile is an OSError), a bad
# deflate stream (zlib.error), or a stream cut short (EOFError).
_GZIP_ERRORS = (OSError, EOFError, zlib.error)


def is_gzip(path: str | PathLike[str]) -> bool:
    """True when ``path`` starts with the gzip magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_binary(path: str | PathLike[str]) -> IO[bytes]:
    """``path`` opened for binary reading, decompressed when it is gzip (by its magic bytes)."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def _corrupt(path: str | PathLike[str], e: BaseException, line: int | None = None) -> DataError:
    return DataError(f"corrupt or truncated gzip file: {e}", source=str(path), line=line)


def read_bytes(path: str | PathLike[str]) -> bytes:
    """The whole content of ``path`` (decompressed when it is gzip)."""
    if not is_gzip(path):
        with open(path, "rb") as fh:
            return fh.read()
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except _GZIP_ERRORS as e:
        raise _corrupt(path, e) from None


def iter_lines(path: str | PathLike[str]) -> Iterator[bytes]:
    """The raw lines of ``path`` (split at ``\\n``, kept), decompressed when it is gzip; a
    damaged gzip stream is a :class:`DataError` naming the file and the line it broke at."""
    if not is_gzip(path):
        with open(path, "rb") as fh:
            yield from fh
        return
    n = 0
    with gzip.open(path, "rb") as fh:
        while True:
            try:
                raw = fh.readline()
            except _GZIP_ERRORS as e:
                raise _corrupt(path, e, n + 1) from None
            if not raw:
                return
            n += 1
            yield raw
