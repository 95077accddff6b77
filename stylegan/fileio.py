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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


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


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one record to a JSONL journal and make it durable before returning.

    The journal is how a stage remembers finished work across a kill: a record
    that is not fully on disk is ignored by `read_jsonl` on the next run.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    _drop_torn_tail(dest)
    with open(dest, "ab") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _drop_torn_tail(path: Path) -> None:
    """Cut an unterminated last line (a writer killed mid-record) off a journal."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "rb+") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


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
