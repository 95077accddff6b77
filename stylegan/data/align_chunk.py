"""The align stage for one crawl chunk: photos in, aligned PNGs and face records out.

Each photo is decoded, searched for faces and every face aligned in a pool of
worker processes (dlib models loaded once per worker); a photo of the aligned
source is a face already and is taken as it is. The main process journals
each finished photo, fsynced, in a work-in-progress file beside the chunk's
output, never the output itself: Snakemake deletes the declared outputs of a
failed job, and the journal must survive a kill. A rerun skips journalled photos
made with the same settings. At the end the journal becomes the chunk's face
records (and a report of every photo or face that failed, with its reason), and
is removed, so that `snakemake --forcerun align` really redoes the work.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import multiprocessing
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from stylegan import fileio
from stylegan.data import landmarks
from stylegan.data.align import AlignSettings, align
from stylegan.data.crawl.aligned import SOURCE as ALIGNED
from stylegan.data.photo import PhotoError, decode
from stylegan.data.records import face_record
from stylegan.errors import StageError

log = logging.getLogger(__name__)

Task = tuple[dict[str, Any], AlignSettings, str]  # photo record, settings, the chunk's image folder


def wip_path(out: Path) -> Path:
    """The chunk's journal: beside the output, hidden, and not a declared output."""
    return out.with_name(f".{out.name}.wip")


def image_path(folder: Path, photo_id: str, index: int) -> Path:
    """A file name per face that is safe on any file system and unique per photo id."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", photo_id)[-80:]
    digest = hashlib.blake2b(photo_id.encode("utf-8"), digest_size=4).hexdigest()
    return folder / f"{slug}-{digest}_{index:02d}.png"


def fingerprint(settings: AlignSettings) -> str:
    """What makes two runs' crops equal: every setting but the worker count."""
    fields = {k: v for k, v in dataclasses.asdict(settings).items() if k != "workers"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def png_bytes(pixels: np.ndarray) -> bytes:
    """The aligned image as a PNG (lossless: the record's md5 is of these pixels)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def align_photo(task: Task) -> dict[str, Any]:
    """Every face of one photo, aligned and written; a journal entry with its face records.

    Failures are records, not exceptions: an unreadable photo or one without a face
    gets one record with `face_id` null; a face that cannot be aligned gets its own
    `align_failed` record. The run goes on either way.
    """
    photo, settings, folder = task
    if photo["source"] == ALIGNED:
        return _entry(photo, [aligned_face(photo)])
    try:
        pixels = decode(photo["path"], settings.max_image_pixels)
    except PhotoError as err:
        return _entry(
            photo, [face_record(photo, status="unreadable", reason=str(err), output_size=settings.output_size)]
        )
    found = _finder(settings).find(pixels)
    if not found:
        return _entry(
            photo, [face_record(photo, status="no_face", reason="no face detected", output_size=settings.output_size)]
        )
    return _entry(
        photo, [_align_face(photo, pixels, index, face, settings, Path(folder)) for index, face in enumerate(found)]
    )


def aligned_face(photo: dict[str, Any]) -> dict[str, Any]:
    """A photo of the aligned source as its own face: no detection, and its pixels unchanged.

    The image is the photo file itself; its quad is the whole image, so `qsize` is
    its side and the filters' size and eye-ratio checks read it as an aligned crop.
    There are no landmarks: the aligned source does not run dlib.
    """
    try:
        with Image.open(photo["path"]) as image:  # read as pack reads it, so the md5s agree
            pixels = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    except OSError as err:
        return face_record(
            photo, status="unreadable", reason=f"{type(err).__name__}: {err}", output_size=photo["width"]
        )
    side = pixels.shape[0]
    return face_record(
        photo,
        face_id=f"{photo['photo_id']}#0",
        face_index=0,
        image=photo["path"],
        md5=hashlib.md5(pixels.tobytes()).hexdigest(),
        quad=[[0, 0], [0, side], [side, side], [side, 0]],
        qsize=float(side),
        output_size=side,
        status="ok",
    )


def _align_face(
    photo: dict[str, Any],
    pixels: np.ndarray,
    index: int,
    face: landmarks.Detection,
    settings: AlignSettings,
    folder: Path,
) -> dict[str, Any]:
    """Align one detected face, write its PNG atomically, and describe it."""
    known = dict(
        face_id=f"{photo['photo_id']}#{index}",
        face_index=index,
        landmarks=face.landmarks.round(2).tolist(),
        rect=list(face.rect),
        score=round(face.score, 6),
        output_size=settings.output_size,
    )
    try:
        aligned = align(
            pixels, face.landmarks, settings.output_size, settings.transform_size, settings.rotate, settings.padding
        )
    except (ValueError, MemoryError) as err:  # AlignError (degenerate landmarks), or numpy/Pillow on extreme geometry
        return face_record(photo, **known, status="align_failed", reason=f"{type(err).__name__}: {err}")
    path = image_path(folder, photo["photo_id"], index)
    fileio.write_bytes(path, png_bytes(aligned.image))
    return face_record(
        photo,
        **known,
        image=str(path),
        md5=hashlib.md5(np.ascontiguousarray(aligned.image).tobytes()).hexdigest(),
        quad=aligned.quad.round(3).tolist(),
        qsize=round(aligned.qsize, 3),
        status="ok",
    )


def _entry(photo: dict[str, Any], faces: list[dict[str, Any]]) -> dict[str, Any]:
    return {"photo_id": photo["photo_id"], "faces": faces}


def align_chunk(settings: AlignSettings, photos: Path, images: Path, out: Path, report: Path) -> dict[str, int]:
    """Align every ok photo of a crawl chunk, resumably; write its face records and report.

    Aligned PNGs go to `images/<chunk>/`, where <chunk> is the output's stem.
    Returns the number of records per status.
    """
    records = _ok_photos(photos)
    with fileio.Journal(wip_path(out), key=lambda entry: entry["photo_id"]) as journal:
        done = _finished(journal, settings)
        faces, counts = _align_rest(settings, records, images / out.stem, journal, done)
        fileio.write_json(report, _report(out.stem, len(records), faces, counts))
        fileio.write_jsonl(out, faces)
        journal.finish()
    log.info("chunk %s: %d photos, %s", out.stem, len(records), dict(sorted(counts.items())))
    return dict(counts)


def _align_rest(
    settings: AlignSettings,
    records: list[dict[str, Any]],
    folder: Path,
    journal: fileio.Journal,
    done: dict[str, dict[str, Any]],
) -> tuple[list[dict[str, Any]], Counter]:
    """Align the photos not yet done, journalling each; every face record of the chunk and their counts."""
    todo = [r for r in records if r["photo_id"] not in done]
    if done:
        log.info("resuming %s: %d of %d photos already aligned", folder.name, len(records) - len(todo), len(records))
    for stray in folder.glob(".*.tmp"):  # PNGs a killed run was writing
        stray.unlink()
    tag = fingerprint(settings)
    with tqdm(total=len(records), initial=len(records) - len(todo), desc=f"align {folder.name}", unit="photo") as bar:
        for entry in _run([(photo, settings, str(folder)) for photo in todo], settings):
            journal.record({**entry, "settings": tag})
            done[entry["photo_id"]] = entry
            bar.update()
    faces = [face for photo in records for face in done[photo["photo_id"]]["faces"]]
    return faces, Counter(face["status"] for face in faces)


def _ok_photos(photos: Path) -> list[dict[str, Any]]:
    """The chunk's downloaded photos (crawl failures are the crawl report's business), once each."""
    if not photos.is_file():
        raise StageError(f"--photos: {photos} does not exist (run the crawl stage first)")
    unique: dict[str, dict[str, Any]] = {}
    for number, record in enumerate(fileio.read_jsonl(photos), start=1):
        missing = [key for key in ("photo_id", "path", "status") if key not in record]
        if missing:
            raise StageError(f"{photos}: record {number} lacks {', '.join(missing)}; not a photo record")
        if record["status"] == "ok":
            unique.setdefault(record["photo_id"], record)
    return list(unique.values())


def _finished(journal: fileio.Journal, settings: AlignSettings) -> dict[str, dict[str, Any]]:
    """Journalled photos made with these settings whose aligned images are all still in place."""
    tag = fingerprint(settings)
    done = {}
    for entry in journal.entries.values():
        images = [face["image"] for face in entry["faces"] if face["status"] == "ok"]
        if entry.get("settings") == tag and all(Path(p).is_file() for p in images):
            done[entry["photo_id"]] = {"photo_id": entry["photo_id"], "faces": entry["faces"]}
    return done


def _run(tasks: list[Task], settings: AlignSettings) -> Iterator[dict[str, Any]]:
    """Journal entries as photos finish: in this process for one worker, else in a pool."""
    if settings.workers == 1 or len(tasks) <= 1:
        yield from map(align_photo, tasks)
        return
    # spawn, not fork: dlib and the tqdm thread are not fork-safe; each worker loads
    # its models once in the initializer. An executor, not a Pool: a worker that dies
    # (out of memory, a crash in dlib) breaks the run instead of hanging it, and the
    # journal lets the rerun carry on.
    detect = any(photo["source"] != ALIGNED for photo, _, _ in tasks)
    pool = ProcessPoolExecutor(
        settings.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_load_models if detect else None,
        initargs=(settings,) if detect else (),
    )
    try:
        yield from (done.result() for done in as_completed([pool.submit(align_photo, task) for task in tasks]))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _finder(settings: AlignSettings) -> landmarks.FaceFinder:
    return landmarks.finder(settings.detector, settings.upsample, settings.detect_max_side)


def _load_models(settings: AlignSettings) -> None:
    _finder(settings)


def _report(chunk: str, photos: int, faces: list[dict[str, Any]], counts: Counter) -> dict[str, Any]:
    """The chunk's summary: counts per status and every failure with its reason."""
    failures = [
        {key: face[key] for key in ("photo_id", "face_id", "path", "status", "reason")}
        for face in faces
        if face["status"] != "ok"
    ]
    return {
        "chunk": chunk,
        "photos": photos,
        "records": len(faces),
        "counts": dict(sorted(counts.items())),
        "failures": failures,
    }
