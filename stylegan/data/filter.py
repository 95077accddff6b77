"""The filter stage: which aligned faces go into the dataset, and why the others do not.

FFHQ ran "various automatic filters" and then a manual review (NVlabs/ffhq-dataset
README). Here every automatic filter has its threshold in config and each
rejection keeps the filter's name, its measured value and the threshold, so a
person can tune thresholds from the contact sheets instead of guessing. A
person's exclusion list stands in for the manual review; the opt-out list serves
takedown requests (NVlabs/ffhq-dataset README, "Privacy"). A face is rejected by the first
filter it fails, in `FILTERS` order; near-duplicates are judged last, among the
faces every other filter kept, so a blurry copy can never shadow a good one; but
a copy of a withdrawn (opted-out or excluded) face is rejected with it. With
`automatic: false` only the two lists apply: FFHQ's published images passed
NVIDIA's own filters, and the paper's numbers were measured on all of them.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import io
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
from PIL import Image, ImageDraw
from tqdm import tqdm

from stylegan import fileio
from stylegan.data.landmarks import EYE_LEFT, EYE_RIGHT, LANDMARKS
from stylegan.data.records import rejected_face
from stylegan.errors import StageError
from stylegan.settings import setting

log = logging.getLogger(__name__)

# The order a face meets the filters: cheap, list-based ones first; duplicates last.
FILTERS = ("optout", "exclude", "too_small", "landmarks", "blurry", "greyscale", "duplicate")
WITHDRAWN = ("optout", "exclude")  # their near-duplicates are rejected too
COMMENT = re.compile(r"(^|\s)#.*$")
PHASH_SIDE, PHASH_LOW = 32, 8  # 64-bit DCT pHash: 32x32 grey, the 8x8 lowest frequencies


@dataclasses.dataclass(frozen=True)
class FilterSettings:
    """The `filter` config section."""

    max_upscale: float = setting(
        1.0, "a face is too small when its quad side in source pixels is below align.output_size / max_upscale", gt=0
    )
    sharpness_size: int = setting(
        256,
        "side faces are resized to before the Laplacian is measured, so the measure is comparable across output sizes",
        ge=8,
        le=1024,
    )
    min_sharpness: float = setting(
        50.0, "blurry below this variance of the Laplacian of the grey face (0-255 scale)", ge=0
    )
    min_chroma: float = setting(0.04, "greyscale/near-monochrome below this mean (max(RGB)-min(RGB))/255", ge=0, le=1)
    min_eye_ratio: float = setting(
        0.12,
        "implausible landmarks below this eye-to-eye distance / qsize (FFHQ's quad bounds it by 0.25)",
        ge=0,
        le=0.25,
    )
    max_roll: float = setting(
        60.0, "implausible landmarks when the eye line tilts more than this many degrees", ge=0, le=180
    )
    max_hamming: int = setting(
        6,
        "near-duplicates when 64-bit DCT pHashes differ in at most this many bits; the larger qsize is kept",
        ge=0,
        le=64,
    )
    exclude: str | None = setting(
        None, "exclusion list: face or photo ids a person rejected, one per line, '#' comments; null for none"
    )
    optout: str | None = setting(
        None, "opt-out list: photo or owner ids whose owners opted out, one per line, '#' comments; null for none"
    )
    automatic: bool = setting(
        True,
        "run the automatic filters (too_small to duplicate); false: only the exclusion "
        "and opt-out lists, e.g. for FFHQ's published images (crawl.source aligned), "
        "which NVIDIA filtered already",
    )
    sheet_cell: int = setting(96, "contact sheet cell side in pixels", ge=16, le=1024)
    sheet_max: int = setting(100, "faces per filter on its contact sheet", ge=1)
    workers: int = setting(
        2, "processes decoding and measuring faces (the filter job's threads and cpus_per_task)", ge=1
    )


@dataclasses.dataclass(frozen=True)
class Rejection:
    """Why one face was rejected: the filter, what it measured and the bound it broke."""

    filter: str
    value: Any
    threshold: Any


def read_id_list(path: str | None) -> set[str]:
    """Ids from a list file, one per line.

    Blank lines and comments (`#` at the start or after whitespace) are ignored.
    A configured list that does not exist is an error, not an empty list: a
    takedown request must never be skipped silently because of a typo.
    """
    if path is None:
        return set()
    file = Path(path)
    if not file.is_file():
        raise StageError(f"{path}: id list not found (filter.exclude / filter.optout)")
    # Face ids hold '#' ("<photo_id>#<k>"), so a comment starts a line or follows a space.
    ids = (COMMENT.sub("", line).strip() for line in file.read_text(encoding="utf-8").splitlines())
    return {i for i in ids if i}


def load_face(record: dict[str, Any]) -> np.ndarray:
    """The aligned face of a record as HxWx3 uint8."""
    try:
        with Image.open(record["image"]) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, KeyError, TypeError) as err:
        raise StageError(
            f"face {record.get('face_id')}: cannot read aligned image {record.get('image')!r}: {err}"
        ) from None


def sharpness(pixels: np.ndarray, size: int) -> float:
    """Variance of the Laplacian of the grey face at a fixed size (high = sharp).

    Resizing first makes the measure comparable between output sizes.
    """
    grey = Image.fromarray(pixels).convert("L").resize((size, size), Image.BILINEAR)
    return float(scipy.ndimage.laplace(np.asarray(grey, dtype=np.float64)).var())


def chroma(pixels: np.ndarray) -> float:
    """Mean chroma in [0, 1]: 0 for a grey image, small for a near-monochrome one."""
    rgb = pixels.astype(np.int16)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean() / 255.0)


def eye_geometry(landmarks: list[list[float]]) -> tuple[float, float]:
    """Eye-to-eye distance in photo pixels and the eye line's roll in degrees."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (LANDMARKS, 2):
        raise StageError(f"landmarks: expected {LANDMARKS}x2 points, got shape {points.shape}")
    dx, dy = points[EYE_RIGHT].mean(axis=0) - points[EYE_LEFT].mean(axis=0)
    return float(np.hypot(dx, dy)), float(np.degrees(np.arctan2(dy, dx)))


def phash(pixels: np.ndarray) -> int:
    """64-bit DCT perceptual hash: which low frequencies lie above their median."""
    grey = Image.fromarray(pixels).convert("L").resize((PHASH_SIDE, PHASH_SIDE), Image.BILINEAR)
    dct = scipy.fft.dctn(np.asarray(grey, dtype=np.float64), norm="ortho")[:PHASH_LOW, :PHASH_LOW]
    bits = (dct > np.median(dct.ravel()[1:])).ravel()  # the DC term would dominate the median
    return int(np.packbits(bits).view(">u8")[0])


def withdrawn(
    record: dict[str, Any], settings: FilterSettings, optout: set[str], exclude: set[str]
) -> Rejection | None:
    """The opt-out or exclusion verdict on a face: from its ids alone, no pixels needed."""
    for key in ("photo_id", "owner_id"):
        if record.get(key) in optout:
            return Rejection("optout", record[key], settings.optout)
    for key in ("face_id", "photo_id"):
        if record.get(key) in exclude:
            return Rejection("exclude", record[key], settings.exclude)
    return None


def landmark_rejection(record: dict[str, Any], settings: FilterSettings) -> Rejection | None:
    """The landmark filter's verdict; none for a face without landmarks (the aligned source runs no detector)."""
    if record["landmarks"] is None:
        return None
    eyes, roll = eye_geometry(record["landmarks"])
    if eyes / record["qsize"] < settings.min_eye_ratio:
        return Rejection(
            "landmarks", {"eye_ratio": round(eyes / record["qsize"], 4)}, {"min_eye_ratio": settings.min_eye_ratio}
        )
    if abs(roll) > settings.max_roll:
        return Rejection("landmarks", {"roll": round(roll, 2)}, {"max_roll": settings.max_roll})
    return None


def judge(record: dict[str, Any], pixels: np.ndarray, settings: FilterSettings) -> Rejection | None:
    """The first automatic filter (before `duplicate`) this face fails, or None if it passes all."""
    min_qsize = record["output_size"] / settings.max_upscale
    if record["qsize"] < min_qsize:
        return Rejection("too_small", round(record["qsize"], 2), round(min_qsize, 2))
    rejection = landmark_rejection(record, settings)
    if rejection is not None:
        return rejection
    sharp = sharpness(pixels, settings.sharpness_size)
    if sharp < settings.min_sharpness:
        return Rejection("blurry", round(sharp, 2), settings.min_sharpness)
    colour = chroma(pixels)
    if colour < settings.min_chroma:
        return Rejection("greyscale", round(colour, 4), settings.min_chroma)
    return None


def measure_face(
    record: dict[str, Any], settings: FilterSettings, optout: set[str], exclude: set[str]
) -> tuple[Rejection | None, int | None]:
    """One face's verdict before the duplicate check, and its pHash if that check needs it.

    A withdrawn face whose aligned image is already gone (deleted on a takedown
    request) is still rejected, only without a hash to catch its copies.
    Runs in a worker process: decoding and measuring dominate the stage's time.
    """
    rejection = withdrawn(record, settings, optout, exclude)
    if not settings.automatic:  # no duplicate check either, so no pixels are needed
        return rejection, None
    if rejection is not None:
        try:
            return rejection, phash(load_face(record))
        except StageError as err:
            log.warning("%s; rejected as %s without a duplicate check", err, rejection.filter)
            return rejection, None
    pixels = load_face(record)
    rejection = judge(record, pixels, settings)
    return rejection, phash(pixels) if rejection is None else None


def measure_all(
    faces: list[dict[str, Any]], settings: FilterSettings, optout: set[str], exclude: set[str]
) -> tuple[dict[str, Rejection], dict[str, int]]:
    """Every face's rejection (if any) and pHash (if needed), measured by `settings.workers` processes."""
    rejections: dict[str, Rejection] = {}
    hashes: dict[str, int] = {}
    measure = functools.partial(measure_face, settings=settings, optout=optout, exclude=exclude)
    chunksize = max(1, min(64, len(faces) // (4 * settings.workers)))
    with concurrent.futures.ProcessPoolExecutor(settings.workers) as pool:
        measured = tqdm(
            pool.map(measure, faces, chunksize=chunksize), total=len(faces), desc="filter", unit="face", disable=None
        )
        for record, (rejection, code) in zip(faces, measured):
            if code is not None:
                hashes[record["face_id"]] = code
            if rejection is not None:
                rejections[record["face_id"]] = rejection
    return rejections, hashes


def near_duplicates(
    candidates: list[dict[str, Any]], hashes: dict[str, int], max_hamming: int, withdrawn: Sequence[str] = ()
) -> dict[str, tuple[str, int]]:
    """Faces whose pHash is within `max_hamming` bits of one ranked before them: id -> (that id, bits).

    Withdrawn faces (opt-out and exclusion lists) rank first, so a copy of a
    photo that was taken down, re-uploaded by someone else, cannot take its
    place. Then faces rank largest qsize first (ties by face id), so of each
    group of copies the one with the most source pixels stays.
    """
    order = list(withdrawn) + [r["face_id"] for r in sorted(candidates, key=lambda r: (-r["qsize"], r["face_id"]))]
    anchors: list[str] = []
    anchor_hashes = np.zeros(len(order), dtype=np.uint64)
    dupes: dict[str, tuple[str, int]] = {}
    for rank, face_id in enumerate(order):
        code = np.uint64(hashes[face_id])
        if anchors and rank >= len(withdrawn):
            bits = np.bitwise_count(anchor_hashes[: len(anchors)] ^ code)
            nearest = int(bits.argmin())
            if bits[nearest] <= max_hamming:
                dupes[face_id] = (anchors[nearest], int(bits[nearest]))
                continue
        anchor_hashes[len(anchors)] = code
        anchors.append(face_id)
    return dupes


def read_faces(chunks: Sequence[Path]) -> list[dict[str, Any]]:
    """Every face record of the align chunks, checked for the fields the filters read."""
    records = []
    for chunk in chunks:
        for record in fileio.read_jsonl(chunk):
            if "status" not in record:
                raise StageError(f"{chunk}: a record has no 'status'; is this align output?")
            if record["status"] == "ok":
                missing = [k for k in ("face_id", "image", "qsize", "output_size") if record.get(k) is None]
                if missing:
                    raise StageError(f"{chunk}: face {record.get('face_id')} lacks {', '.join(missing)}")
            records.append(record)
    ids = [r["face_id"] for r in records if r["status"] == "ok"]
    if len(ids) != len(set(ids)):
        raise StageError(f"face ids repeat across {len(list(chunks))} chunk(s); is a chunk listed twice?")
    return records


def run(
    settings: FilterSettings, chunks: list[Path], kept_path: Path, rejected_path: Path, summary_path: Path, sheets: Path
) -> Counter:
    """Filter every ok face of the align chunks; write kept, rejected, summary and sheets.

    Returns the counts written to the summary.
    """
    optout, exclude = read_id_list(settings.optout), read_id_list(settings.exclude)
    records = read_faces(chunks)
    faces = [r for r in records if r["status"] == "ok"]
    upstream = Counter(r["status"] for r in records if r["status"] != "ok")
    rejections, hashes = measure_all(faces, settings, optout, exclude)
    survivors = [r for r in faces if r["face_id"] not in rejections]
    gone = sorted(i for i, r in rejections.items() if r.filter in WITHDRAWN and i in hashes)
    dupes = near_duplicates(survivors, hashes, settings.max_hamming, gone) if settings.automatic else {}
    for face_id, (kept_id, bits) in dupes.items():
        rejections[face_id] = Rejection("duplicate", {"bits": bits, "of": kept_id}, settings.max_hamming)
    kept = sorted((r for r in faces if r["face_id"] not in rejections), key=lambda r: r["face_id"])
    rejected = sorted(
        (rejected_face(r, **dataclasses.asdict(rejections[r["face_id"]])) for r in faces if r["face_id"] in rejections),
        key=lambda r: (FILTERS.index(r["filter"]), r["face_id"]),
    )
    fileio.write_jsonl(kept_path, kept)
    fileio.write_jsonl(rejected_path, rejected)
    counts = summarise(records, upstream, rejected, kept)
    write_summary(summary_path, counts, settings)
    write_sheets(sheets, rejected, settings)
    log.info(
        "filter: %d of %d ok faces kept; rejected %s",
        len(kept),
        len(faces),
        {f: counts[f] for f in FILTERS if counts[f]},
    )
    return counts


def summarise(
    records: list[dict[str, Any]], upstream: Counter, rejected: list[dict[str, Any]], kept: list[dict[str, Any]]
) -> Counter:
    """Counts per upstream failure status, per filter, and kept."""
    counts = Counter({"records": len(records), "kept": len(kept)})
    counts.update({f"upstream:{status}": n for status, n in upstream.items()})
    counts.update(r["filter"] for r in rejected)
    return counts


def write_summary(path: Path, counts: Counter, settings: FilterSettings) -> None:
    """A TSV a person can read: one row per outcome, with the filter's threshold."""
    thresholds = {
        "optout": settings.optout, "exclude": settings.exclude,
        "too_small": f"qsize >= output_size / {settings.max_upscale}",
        "landmarks": f"eye_ratio >= {settings.min_eye_ratio}, |roll| <= {settings.max_roll}",
        "blurry": f"laplacian_var@{settings.sharpness_size} >= {settings.min_sharpness}",
        "greyscale": f"chroma >= {settings.min_chroma}",
        "duplicate": f"phash_bits > {settings.max_hamming}",
    }  # fmt: skip
    if not settings.automatic:
        thresholds.update(dict.fromkeys(set(FILTERS) - set(WITHDRAWN), "off (filter.automatic: false)"))
    rows = ["outcome\tcount\tthreshold", f"records\t{counts['records']}\t"]
    rows += [f"{key}\t{n}\t" for key, n in sorted(counts.items()) if key.startswith("upstream:")]
    rows += [f"{name}\t{counts[name]}\t{thresholds[name] or ''}" for name in FILTERS]
    rows.append(f"kept\t{counts['kept']}\t")
    fileio.write_text(path, "\n".join(rows) + "\n")


def write_sheets(folder: Path, rejected: list[dict[str, Any]], settings: FilterSettings) -> None:
    """One PNG grid per filter that rejected anything, each face labelled with its value.

    Sheets of filters that rejected nothing this time are removed, so the
    folder always shows the current run.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILTERS:
        faces = [r for r in rejected if r["filter"] == name][: settings.sheet_max]
        target = folder / f"{name}.png"
        if not faces:
            target.unlink(missing_ok=True)
            continue
        fileio.write_bytes(target, _sheet_png(faces, settings.sheet_cell))


def _sheet_png(faces: list[dict[str, Any]], cell: int) -> bytes:
    """A grid of faces, ten per row, each captioned with its measured value."""
    columns = min(10, len(faces))
    rows = -(-len(faces) // columns)
    label = 12  # pixels of caption under each face
    sheet = Image.new("RGB", (columns * cell, rows * (cell + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, record in enumerate(faces):
        x, y = (i % columns) * cell, (i // columns) * (cell + label)
        try:
            sheet.paste(Image.fromarray(load_face(record)).resize((cell, cell), Image.BILINEAR), (x, y))
        except StageError:  # a withdrawn face whose image was deleted: an empty, labelled cell
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), outline="grey")
        draw.text((x + 2, y + cell), _caption(record["value"])[: cell // 6], fill="black")
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def _caption(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{v}" for v in value.values())
    return str(value)
