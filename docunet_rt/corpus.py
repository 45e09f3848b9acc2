"""Reading a corpus: a file (gzip detected from its bytes), ``-`` (stdin) or a binary stream, of
JSONL records; a whole-file JSON list of documents or one pretty-printed document is read whole
and given as one document per line (``as_jsonl``).

``LineReader`` yields the non-blank lines as ``(line number, raw bytes)`` with bounded memory: a
line longer than the record cap is not kept (it yields ``TooLarge(size)``, and extraction turns
it into an error record). It also fingerprints what it has read (SHA-256 and size of the bytes
up to each line end), which is how a resumed run proves it is reading the same corpus.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import sys
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

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
        if raw is not corpus and not is_dash(corpus):  # our file: closing the gzip closes it
            raw.close()
            return gzip.open(Path(corpus), "rb")  # type: ignore[arg-type, return-value]
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


PEEK = 1 << 16  # bytes looked at to tell a JSON list or a pretty-printed document from JSONL
MAX_WHOLE_DOCUMENT = 64 << 20  # a pretty-printed document is read whole up to this size
BOM = b"\xef\xbb\xbf"


class _Prefixed(io.RawIOBase):
    """``head`` bytes, then the rest of ``fh``."""

    def __init__(self, head: bytes, fh: IO[bytes]) -> None:
        self.head, self.pos, self.fh = memoryview(head), 0, fh

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.pos < len(self.head):  # an offset, not re-slicing: linear in the head's size
            n = min(len(b), len(self.head) - self.pos)
            b[:n] = self.head[self.pos : self.pos + n]
            self.pos += n
            return n
        data = self.fh.read(len(b))
        b[: len(data)] = data
        return len(data)


def _documents_as_jsonl(value: Any) -> bytes:
    docs = value if isinstance(value, list) else [value]
    return b"".join(orjson.dumps(d) + b"\n" for d in docs)


def as_jsonl(fh: IO[bytes], source: str) -> IO[bytes]:
    """See :func:`_as_jsonl`; a stream that cannot be read is a DataError naming it."""
    try:
        return _as_jsonl(fh, source)
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"cannot read the corpus: {e}", source=source, line=1) from None


def _as_jsonl(fh: IO[bytes], source: str) -> IO[bytes]:
    """JSONL as it is; a whole-file JSON list of documents (DocRED's ``test.json``) or one
    pretty-printed document is read whole and given one document per line (line N = document
    N). Other formats (PubTator, CDR ``.data``) are an error that points to ``convert``."""
    read1 = getattr(fh, "read1", fh.read)  # what is there now: never waits for PEEK bytes
    head = b""
    while len(head) < PEEK:  # up to the first line end (a JSONL producer sends whole lines)
        chunk = read1(PEEK - len(head))
        head += chunk
        if not chunk or b"\n" in head.lstrip(BOM + b" \t\r\n"):
            break
    start = head.lstrip(BOM + b" \t\r\n")[:1]
    whole: bytes | None = None
    if start == b"[":
        whole = head + fh.read()
    elif start == b"{":
        text = head.lstrip(BOM + b" \t\r\n")  # the first non-blank line decides
        first = text.split(b"\n", 1)[0] if b"\n" in text else None
        try:
            if first is not None:
                orjson.loads(first)
        except orjson.JSONDecodeError:  # not one object per line: one pretty-printed document?
            more = fh.read(MAX_WHOLE_DOCUMENT)
            rest = head + more
            if len(more) < MAX_WHOLE_DOCUMENT:  # the whole file: try it as one document
                with contextlib.suppress(orjson.JSONDecodeError):
                    return io.BytesIO(_documents_as_jsonl(orjson.loads(rest.removeprefix(BOM))))
            return io.BufferedReader(_Prefixed(rest, fh))  # JSONL whose first line is bad
    elif start:
        raise DataError(
            "the corpus is not JSONL (one JSON document per line) nor a JSON list; for "
            "PubTator or CDR .data files run: docunet-rt convert CORPUS -o corpus.jsonl",
            source=source,
        )
    if whole is not None:
        try:
            return io.BytesIO(_documents_as_jsonl(orjson.loads(whole.removeprefix(BOM))))
        except orjson.JSONDecodeError as e:
            raise DataError(
                f"the corpus is a JSON list that does not parse: {e}", source=source
            ) from None
    return io.BufferedReader(_Prefixed(head, fh))


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
        limit = -1 if self.max_bytes is None else self.max_bytes + 5  # BOM + CRLF slack
        raw = self.fh.readline(limit)
        self.sha.update(raw)
        self.size += len(raw)
        if limit < 0 or raw.endswith(b"\n") or len(raw) < limit:
            return raw
        size, tail = len(raw), raw[-2:]  # over the cap: read the rest of the line, not keeping it
        while chunk := self.fh.readline(READ_CHUNK):
            self.sha.update(chunk)
            self.size += len(chunk)
            size, tail = size + len(chunk), (tail + chunk)[-2:]
            if chunk.endswith(b"\n"):
                break
        ending = len(tail) - len(tail.rstrip(b"\r\n"))
        return TooLarge(size - ending - (3 if raw.startswith(BOM) else 0))  # the content's size

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
        yield from LineReader(as_jsonl(fh, source_name(corpus)), source_name(corpus), max_bytes)
    finally:
        if fh is not corpus and not is_dash(corpus):
            fh.close()
