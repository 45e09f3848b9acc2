"""Reading a JSONL corpus: a file (gzip detected from its bytes), ``-`` (stdin) or a binary stream.

``LineReader`` yields the non-blank lines as ``(line number, raw bytes)`` with bounded memory: a
line longer than the record cap is not kept (it yields ``TooLarge(size)``, and extraction turns
it into an error record). It also fingerprints what it has read (SHA-256 and size of the bytes
up to each line end), which is how a resumed run proves it is reading the same corpus.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .data import DataError

_Path = str | os.PathLike
READ_CHUNK = 1 << 20  # how much of an over-long line is read (and hashed) at a time


class TooLarge(int):
    """Stands in for a line of this many bytes that was too large to keep."""


def is_dash(x: Any) -> bool:
    return isinstance(x, str | os.PathLike) and os.fspath(x) == "-"


def source_name(corpus: Any) -> str:
    return "<stdin>" if is_dash(corpus) else str(getattr(corpus, "name", corpus))


def open_corpus(corpus: _Path | IO[bytes]) -> IO[bytes]:
    """A binary line stream over a file, ``-`` (stdin) or a binary file object; gzip is detected
    from the magic bytes. Raises ``FileNotFoundError``/``OSError`` for an unreadable file."""
    if is_dash(corpus):
        raw: IO[bytes] = sys.stdin.buffer
    elif hasattr(corpus, "read"):
        raw = corpus  # type: ignore[assignment]
    else:
        p = Path(corpus)  # type: ignore[arg-type]
        if not p.exists():
            raise FileNotFoundError(f"corpus {p} does not exist")
        if p.is_dir():
            raise IsADirectoryError(f"corpus {p} is a directory, not a .jsonl or .jsonl.gz file")
        raw = open(p, "rb")  # noqa: SIM115 - closed by the caller
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if not hasattr(raw, "peek") and raw.seekable():
        pos, head = raw.tell(), raw.read(2)
        raw.seek(pos)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


class LineReader:
    """Non-blank lines of ``fh`` as ``(line, raw)`` (BOM and line end removed); ``raw`` is a
    ``TooLarge`` for a line over ``max_bytes``. ``mark(line)`` is ``(bytes read, sha256)`` of
    the stream up to the end of a line that was yielded (kept until ``forget``)."""

    def __init__(self, fh: IO[bytes], source: str, max_bytes: int | None = None) -> None:
        self.fh, self.source, self.max_bytes = fh, source, max_bytes
        self.sha, self.size = hashlib.sha256(), 0
        self._marks: dict[int, tuple[int, str]] = {0: (0, self.sha.hexdigest())}
        self._lock = threading.Lock()

    def mark(self, line: int) -> tuple[int, str]:
        with self._lock:
            return self._marks[line]

    def forget(self, before: int) -> None:
        """Drop the marks of lines before ``before`` (they will not be asked for again)."""
        with self._lock:
            for k in [k for k in self._marks if k < before]:
                del self._marks[k]

    def _read_line(self) -> bytes | TooLarge:
        limit = -1 if self.max_bytes is None else self.max_bytes + 3  # BOM + CRLF slack
        raw = self.fh.readline(limit)
        self.sha.update(raw)
        self.size += len(raw)
        if limit < 0 or raw.endswith(b"\n") or len(raw) < limit:
            return raw
        size = len(raw)  # over the cap: read the rest of the line without keeping it
        while chunk := self.fh.readline(READ_CHUNK):
            self.sha.update(chunk)
            self.size += len(chunk)
            size += len(chunk)
            if chunk.endswith(b"\n"):
                break
        return TooLarge(size)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        n = 0
        try:
            while True:
                raw = self._read_line()
                if not isinstance(raw, TooLarge) and not raw:
                    return
                n += 1
                if not isinstance(raw, TooLarge):
                    if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                        raw = raw[3:]
                    raw = raw.rstrip(b"\r\n")
                    if self.max_bytes is not None and len(raw) > self.max_bytes:
                        raw = TooLarge(len(raw))
                    elif not raw.strip():
                        continue
                with self._lock:
                    self._marks[n] = (self.size, self.sha.hexdigest())
                yield n, raw  # type: ignore[misc]
        except (EOFError, OSError, zlib.error) as e:
            raise DataError(
                f"cannot read the corpus: {e}", source=self.source, line=n + 1
            ) from None


def read_corpus_lines(
    corpus: _Path | IO[bytes], max_bytes: int | None = None
) -> Iterator[tuple[int, bytes]]:
    """Lazily ``(line_no, raw bytes)`` of each non-blank line of a .jsonl[.gz] file or ``-``."""
    fh = open_corpus(corpus)
    try:
        yield from LineReader(fh, source_name(corpus), max_bytes)
    finally:
        if fh is not corpus and not is_dash(corpus):
            fh.close()
