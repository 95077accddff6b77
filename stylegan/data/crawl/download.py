"""Download one chunk of the catalogue into the photo store, resumably.

The store (e.g. `resources/photos/`) is not a rule output, so Snakemake never
deletes it after a failed job. Each finished photo is journalled (fsynced) in
`<store>/.journal/`; a rerun skips journalled photos whose file is in place and
adopts files that were renamed into place just before a kill. Bytes stream to a
temp file and are renamed to their final name only after they decode as an
image of the catalogued size. A file that keeps failing that check is moved to
`<store>/.quarantine/` and recorded as failed with its reason; the run goes on.
Images of the aligned source are checked the same way where they lie, never copied.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlparse

import requests
from PIL import Image
from tqdm import tqdm

from stylegan import fileio
from stylegan.data.crawl.aligned import SOURCE as ALIGNED
from stylegan.data.crawl.config import CrawlSettings
from stylegan.data.crawl.retry import TRANSIENT_ERRORS, Backoff, GaveUp, Retryable, check_status
from stylegan.data.photo import IMAGE_SUFFIXES
from stylegan.data.records import CatalogueRecord, PhotoRecord, downloaded
from stylegan.errors import StageError

log = logging.getLogger(__name__)
BLOCK = 1 << 17  # 128 KiB reads, as FFHQ's downloader streamed (NVlabs/ffhq-dataset `download_ffhq.py` download_file)
EXIF_ORIENTATION = 0x0112
QUARANTINED = "quarantined as "  # how a quarantined photo's reason begins (the report lists them)


class BadFile(Retryable):
    """The bytes arrived but are not the photo (truncated, corrupt, wrong size)."""


def chunk_of(photo_id: str, chunks: int) -> int:
    """The chunk a photo belongs to: a hash that is the same in every process and run.

    The 8-byte BLAKE2b digest of the UTF-8 photo id, read as a big-endian integer,
    modulo `chunks`. Python's `hash()` is salted per process, so a digest is used instead.
    """
    digest = hashlib.blake2b(photo_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % chunks


def utc_now() -> str:
    """The current time as ISO 8601 UTC, second precision (the records' `crawled_at`)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def licence_refusal(record: dict[str, Any], settings: CrawlSettings) -> str | None:
    """Why a record may not be downloaded: Flickr licences are checked again here."""
    if record["source"] != "flickr":
        return None
    try:
        allowed = int(record["license_id"]) in settings.licenses
    except (TypeError, ValueError):
        allowed = False
    return None if allowed else f"licence {record['license_id']!r} is not on the allow-list"


def store_name(record: dict[str, Any]) -> PurePosixPath:
    """The photo's path inside the store: `<source>/<source id>[.ext]`, never escaping it."""
    if record["source"] == "folder":
        name = PurePosixPath(record["source_id"])
    else:
        suffix = PurePosixPath(urlparse(record["source_url"]).path).suffix.lower()
        name = PurePosixPath(record["source_id"] + (suffix if suffix in IMAGE_SUFFIXES else ".jpg"))
    if name.is_absolute() or ".." in name.parts:
        raise ValueError(f"{record['photo_id']}: unsafe file name {name}")
    return PurePosixPath(record["source"]) / name


def verify(path: Path, width: int | None, height: int | None) -> None:
    """Raise BadFile unless `path` decodes fully as an image of the catalogued size.

    A source may state the size after EXIF rotation while the file stores it
    unrotated (Flickr API docs, misc.urls.html: originals "might not be rotated"), so a quarter-turn
    orientation tag lets the swapped size match too.
    """
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.load()
            size = image.size
            quarter_turn = image.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
    except Exception as err:  # PIL raises many types for bad bytes
        raise BadFile(f"not a decodable image ({type(err).__name__}: {err})") from None
    allowed = {(width, height), (height, width)} if quarter_turn else {(width, height)}
    if width and height and size not in allowed:
        raise BadFile(f"image is {size[0]}x{size[1]}, catalogue says {width}x{height}")


def photo_key(entry: dict[str, Any]) -> str:
    """A download journal entry's key: the photo it is about."""
    return entry["photo_id"]


class ChunkDownloader:
    """Fetches one chunk's photos with parallel workers and journals each result."""

    def __init__(self, settings: CrawlSettings, store: Path, chunk: int):
        self.settings = settings
        self.store = Path(store)
        self.chunk = chunk
        self.journal = self.store / ".journal" / f"{chunk:03d}.jsonl"
        self.tmp = self.store / ".tmp" / f"{chunk:03d}"
        self._local = threading.local()

    def run(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every record of the chunk with its download outcome, in catalogue order."""
        shutil.rmtree(self.tmp, ignore_errors=True)  # a killed run's partial files
        self.tmp.mkdir(parents=True, exist_ok=True)
        finished = self.finished()
        results: dict[str, dict[str, Any]] = {}
        todo = []
        for record in records:
            if record["photo_id"] in finished:
                results[record["photo_id"]] = finished[record["photo_id"]]
            else:
                todo.append(record)
        log.info("chunk %03d: %d photos, %d already done, %d to fetch",
                 self.chunk, len(records), len(results), len(todo))  # fmt: skip
        failed = 0
        with (
            tqdm(total=len(records), initial=len(results), desc=f"chunk {self.chunk:03d}", unit="photo") as bar,
            fileio.Journal(self.journal, key=photo_key) as journal,
        ):
            for outcome in self._fetch_all(todo):
                journal.record(outcome)
                results[outcome["photo_id"]] = outcome
                failed += outcome["status"] != "ok"
                bar.update()
                bar.set_postfix(done=len(results) - failed, failed=failed, remaining=len(records) - len(results))
        shutil.rmtree(self.tmp, ignore_errors=True)
        return [results[r["photo_id"]] for r in records]

    def finished(self) -> dict[str, dict[str, Any]]:
        """Photos done in any earlier run (any chunk's journal) whose file is still in place.

        Failed photos are not finished: a rerun gives them another chance.
        """
        done = {}
        for journal in sorted((self.store / ".journal").glob("*.jsonl")):
            # Read-only: another chunk's job may be appending to its journal right now.
            for entry in fileio.read_jsonl(journal):
                if entry["status"] == "ok" and Path(entry["path"]).is_file():
                    done[photo_key(entry)] = entry
        return done

    def _fetch_all(self, records: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        with ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="download") as pool:
            futures = [pool.submit(self.fetch, record) for record in records]
            for future in as_completed(futures):
                yield future.result()

    def fetch(self, record: dict[str, Any]) -> dict[str, Any]:
        """One photo's outcome record; never raises for a bad photo, only for bugs."""
        refusal = licence_refusal(record, self.settings)
        if refusal:
            return self._outcome(record, None, None, refusal)
        if record["source"] == ALIGNED:
            return self._in_place(record)
        final = self.store / store_name(record)
        if final.is_file():  # renamed into place by a run killed before it journalled
            try:
                verify(final, record["width"], record["height"])
                return self._outcome(record, final, fileio.sha256_file(final), None)
            except BadFile:
                final.unlink()
        tmp = self.tmp / f"{record['source']}-{hashlib.sha1(record['photo_id'].encode()).hexdigest()}"
        backoff = Backoff(self.settings.download.retries, self.settings.download.backoff_s)
        try:
            digest = backoff.run(lambda: self._attempt(record, tmp), record["photo_id"])
        except GaveUp as err:
            reason = str(err)
            if tmp.is_file():
                quarantined = self.store / ".quarantine" / store_name(record)
                quarantined.parent.mkdir(parents=True, exist_ok=True)
                tmp.replace(quarantined)
                reason = f"{QUARANTINED}{quarantined}: {reason}"
            log.warning("%s", reason)
            return self._outcome(record, None, None, reason)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(final)
        return self._outcome(record, final, digest, None)

    def _in_place(self, record: dict[str, Any]) -> dict[str, Any]:
        """An aligned image stays where it is (FFHQ's are 89 GB): decoded whole, checked and hashed there.

        Its file is not copied into the store, so a failure leaves nothing to quarantine.
        """
        path = Path(self.settings.aligned.path or "") / record["source_id"]
        try:
            verify(path, record["width"], record["height"])
        except BadFile as err:
            log.warning("%s: %s", path, err.reason)
            return self._outcome(record, None, None, f"{path}: {err.reason}")
        return self._outcome(record, path, fileio.sha256_file(path), None)

    def _attempt(self, record: dict[str, Any], tmp: Path) -> str:
        """Fetch into `tmp` and verify it; the sha256 of the bytes."""
        if record["source"] == "folder":
            digest = self._copy(Path(self.settings.folder.path) / record["source_id"], tmp)
        else:
            digest = self._get(record["source_url"], tmp)
        verify(tmp, record["width"], record["height"])
        return digest

    def _copy(self, source: Path, tmp: Path) -> str:
        digest = hashlib.sha256()
        try:
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                while block := src.read(BLOCK):
                    digest.update(block)
                    dst.write(block)
                _sync(dst)
        except FileNotFoundError:
            raise GaveUp(f"{source} is gone") from None
        return digest.hexdigest()

    def _get(self, url: str, tmp: Path) -> str:
        """Stream `url` to `tmp`, checking the byte count against Content-Length."""
        session = getattr(self._local, "session", None) or requests.Session()
        self._local.session = session
        digest, received = hashlib.sha256(), 0
        try:
            with session.get(url, stream=True, timeout=self.settings.download.timeout_s) as response:
                check_status(response)
                if response.status_code != 200:
                    raise GaveUp(f"HTTP {response.status_code} for {url}")
                with open(tmp, "wb") as out:
                    for block in response.iter_content(BLOCK):
                        digest.update(block)
                        out.write(block)
                        received += len(block)
                    _sync(out)
                expected = response.headers.get("Content-Length")
        except TRANSIENT_ERRORS as err:
            raise Retryable(f"{type(err).__name__}: {err}") from None
        except requests.RequestException as err:  # a bad URL: no attempt will fix it
            raise GaveUp(f"{type(err).__name__}: {err}") from None
        if expected is not None and int(expected) != received:
            raise BadFile(f"truncated: {received} of {expected} bytes")
        return digest.hexdigest()

    def _outcome(
        self, record: CatalogueRecord, path: Path | None, sha256: str | None, reason: str | None
    ) -> PhotoRecord:
        return downloaded(record, crawled_at=utc_now(), sha256=sha256, path=str(path) if path else None, reason=reason)


def _sync(handle: BinaryIO) -> None:
    """Make a file's bytes durable before it is renamed into place and journalled."""
    handle.flush()
    os.fsync(handle.fileno())


def download_chunk(settings: CrawlSettings, catalogue: Path, chunk: int, store: Path, out: Path) -> dict[str, int]:
    """Download the catalogue's photos that hash to `chunk`; write their records to `out`."""
    if not Path(catalogue).is_file():
        raise StageError(f"--catalogue: {catalogue} does not exist; run `crawl catalogue` first")
    records = [r for r in fileio.read_jsonl(catalogue) if chunk_of(r["photo_id"], settings.chunks) == chunk]
    results = ChunkDownloader(settings, store, chunk).run(records)
    fileio.write_jsonl(out, results)
    failed = sum(r["status"] != "ok" for r in results)
    return {"photos": len(results), "ok": len(results) - failed, "failed": failed}
