"""Atomic, resumable file writing shared by every stage.

Every output is written to a temporary file beside its destination and renamed
into place only when complete, so a killed job or a full disk never leaves a
half-written file under a final name. Append-only JSONL logs let long stages
resume: a record is on disk (flushed and fsynced) before the work counts as done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Hashable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success.

    On any exception the temporary file is removed and `path` is untouched.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are shared like any file
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON to `path` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_jsonl(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> None:
    """Write `records`, one JSON object per line, to `path` atomically."""
    write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


class Journal:
    """A long stage's memory of finished work: an append-only JSONL file beside its output.

    Opening reads the file once, cutting a torn last line (a writer killed mid-record)
    once; `record` then appends one line, flushed and fsynced before it returns, at a
    cost that does not grow with the journal; `finish` removes the file once the stage's
    real output is in place, so a forced rerun really redoes the work. Entries are kept
    by `key`; a later entry for the same key replaces the earlier one.
    """

    def __init__(self, path: str | os.PathLike[str], key: Callable[[dict[str, Any]], Hashable]):
        self.path = Path(path)
        self._key = key
        self._drop_torn_tail()
        self.entries: dict[Hashable, dict[str, Any]] = {key(e): e for e in read_jsonl(self.path)}
        self._handle: BinaryIO | None = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def done(self, key: Hashable) -> dict[str, Any] | None:
        """The entry recorded for `key` in this or an earlier run, or None."""
        return self.entries.get(key)

    def record(self, entry: dict[str, Any]) -> None:
        """Append `entry` and make it durable: after this returns, a kill cannot lose it."""
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "ab")
        self._handle.write((json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.entries[self._key(entry)] = entry

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def finish(self) -> None:
        """The work is done and its output written: the journal goes."""
        self.close()
        self.path.unlink(missing_ok=True)

    def _drop_torn_tail(self) -> None:
        """Cut an unterminated last line off the file, reading only its last block."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            end = size
            while end > 0:
                start = max(0, end - (1 << 16))
                handle.seek(start)
                block = handle.read(end - start)
                if end == size and block.endswith(b"\n"):
                    return
                cut = block.rfind(b"\n")
                if cut >= 0:
                    handle.truncate(start + cut + 1)
                    return
                end = start
            handle.truncate(0)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL file, skipping a torn last line left by a killed writer.

    A missing file reads as empty, so a first run and a resumed run share code.
    """
    src = Path(path)
    if not src.exists():
        return []
    records = []
    lines = src.read_bytes().split(b"\n")
    for number, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            records.append(json.loads(raw))
        except json.JSONDecodeError:
            if number == len(lines) - 1:  # torn tail: the writer died mid-line
                continue
            raise ValueError(f"{src}: line {number + 1} is not valid JSON") from None
    return records


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The file's sha256, read in 1 MiB blocks so large photos and shards stay out of memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
