"""The embedded demo's photos: in-the-wild pictures made offline from a public-domain face.

The default workflow must run with no network, so its `folder` source is a set of
synthetic "in-the-wild" photos built from the NASA astronaut portrait that ships
inside scikit-image (public domain). Each photo places the head at its own
position, scale, small rotation and mirroring on its own background, so the later
stages (detection, alignment, filtering) see varied but detectable faces.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from stylegan import fileio
from stylegan.data import attributes
from stylegan.settings import SettingsError, setting

log = logging.getLogger(__name__)

# skimage.data.astronaut's docstring: NASA Great Images, "released into the public domain".
ASTRONAUT_URL = "https://flic.kr/p/r9qvLn"
NASA_MEDIA_URL = "https://www.nasa.gov/nasa-brand-center/images-and-media/"
MAX_TILT_DEG = 15.0  # beyond this dlib's HOG frontal detector starts to miss the face
HEAD_MARGIN = 0.55  # the head crop extends the face box by this fraction on each side
ATTRIBUTES = ("Mirrored", "Light_Background")  # labels of each photo, in CelebA's attribute format
LIGHT_BACKGROUND = 127.5  # mean grey level (0-255) of the scene under the head's box above which it is "light"


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """The `demo` config section."""

    photos: int = setting(12, "how many synthetic demo photos to make", ge=1)
    min_side: int = setting(400, "smallest photo side drawn, pixels", ge=256, le=4096)
    max_side: int = setting(900, "largest photo side drawn, pixels (>= min_side)", ge=256, le=4096)
    png_every: int = setting(5, "every n-th demo photo is a PNG, the rest JPEG (0: JPEG only)", ge=0)

    def __post_init__(self) -> None:
        if self.min_side > self.max_side:
            raise SettingsError(f"demo.min_side: got {self.min_side}, expected at most demo.max_side ({self.max_side})")


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where and how one photo shows the head: drawn once from the seed."""

    width: int
    height: int
    face_px: float  # side of the face box in the photo, pixels
    angle: float  # degrees, counter-clockwise
    mirror: bool
    centre: tuple[float, float]  # head centre as fractions of the free area


def astronaut_head() -> tuple[Image.Image, float]:
    """The head region of the astronaut portrait and its face-box side in pixels.

    dlib's HOG finds two "faces" in the full portrait; the real one has by far the
    highest score, so the crop is taken around the best-scoring detection.
    """
    import dlib
    from skimage.data import astronaut

    pixels = astronaut()
    rects, scores, _ = dlib.get_frontal_face_detector().run(pixels, 1, 0.0)
    if not rects:
        raise RuntimeError("dlib found no face in skimage's astronaut portrait")
    best = rects[int(np.argmax(scores))]
    side = best.width()
    margin = side * HEAD_MARGIN
    box = (
        max(0, int(best.left() - margin)),
        max(0, int(best.top() - margin * 1.2)),  # hair above the face
        min(pixels.shape[1], int(best.right() + margin)),
        min(pixels.shape[0], int(best.bottom() + margin * 0.8)),
    )
    return Image.fromarray(pixels).crop(box), float(side)


def draw_placement(rng: np.random.Generator, settings: DemoSettings) -> Placement:
    """Draw one photo's size, face scale, tilt, mirroring and position."""
    width, height = (int(v) for v in rng.integers(settings.min_side, settings.max_side + 1, size=2))
    short = min(width, height)
    return Placement(
        width=width,
        height=height,
        face_px=float(rng.uniform(0.16, 0.32) * short),
        angle=float(rng.uniform(-MAX_TILT_DEG, MAX_TILT_DEG)),
        mirror=bool(rng.random() < 0.5),
        centre=(float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.0, 1.0))),
    )


def background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A synthetic scene: a two-colour gradient at a random angle, blobs, and sensor noise."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = xs * np.cos(theta) + ys * np.sin(theta)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1.0)
    lo, hi = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    pixels = lo + ramp[..., None] * (hi - lo)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(20, width / 3), rng.uniform(20, height / 3)
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0 - rx, y0 - ry, x0 + rx, y0 + ry), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(2, 8))))
    noise = rng.normal(0, rng.uniform(2, 10), size=(height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8))


def compose(
    head: Image.Image, face_side: float, scene: Image.Image, where: Placement
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Paste the head onto the scene, scaled, tilted and mirrored, with a soft oval edge.

    Returns the photo and the pasted box (left, top, right, bottom).
    """
    scale = where.face_px / face_side
    size = (max(1, round(head.width * scale)), max(1, round(head.height * scale)))
    part = head.resize(size, Image.LANCZOS)
    if where.mirror:
        part = part.transpose(Image.FLIP_LEFT_RIGHT)
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((0, 0, size[0] - 1, size[1] - 1), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, min(size) * 0.04)))
    part = part.rotate(where.angle, resample=Image.BICUBIC, expand=True)
    mask = mask.rotate(where.angle, resample=Image.BICUBIC, expand=True)
    free_x = max(0, scene.width - part.width)
    free_y = max(0, scene.height - part.height)
    corner = (round(where.centre[0] * free_x), round(where.centre[1] * free_y))
    photo = scene.copy()
    photo.paste(part, corner, mask)
    return photo, (corner[0], corner[1], corner[0] + part.width, corner[1] + part.height)


def labels(scene: Image.Image, box: tuple[int, int, int, int], where: Placement) -> list[int]:
    """The photo's `ATTRIBUTES` as +1 / -1: properties that alignment keeps visible in the face crop.

    Mirroring survives (alignment levels and scales, it does not flip), and so does
    the background right around the head, which the aligned crop's corners show;
    position, size and tilt do not (alignment undoes them).
    """
    grey = np.asarray(scene.crop(box).convert("L"), np.float32)
    return [1 if where.mirror else -1, 1 if grey.mean() > LIGHT_BACKGROUND else -1]


def encode(photo: Image.Image, as_png: bool, quality: int) -> bytes:
    """The photo's file bytes: PNG, or JPEG at the given quality."""
    buffer = io.BytesIO()
    if as_png:
        photo.save(buffer, format="PNG")
    else:
        photo.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def attribution(index: int) -> dict[str, str]:
    """The sidecar entry for one demo photo: public domain, credited to NASA."""
    return {
        "license_id": "public-domain",
        "license_name": "Public Domain (NASA)",
        "license_url": NASA_MEDIA_URL,
        "owner_name": "NASA",
        "title": f"Eileen Collins, synthetic scene {index}",
        "source_url": ASTRONAUT_URL,
    }


def attributes_file(sidecar: Path) -> Path:
    """The photos' attribute labels, beside the sidecar."""
    return Path(sidecar).with_name("attributes.txt")


def make_photos(settings: DemoSettings, seed: int, sidecar: Path) -> dict[str, dict[str, str]]:
    """Write the demo photos and their attribute labels beside `sidecar`, then the sidecar (last, atomically).

    The sidecar is the rule's only output, so it is written after every photo:
    its presence means the set is complete. Returns the sidecar mapping.
    """
    head, face_side = astronaut_head()
    rng = np.random.default_rng(seed)
    folder = Path(sidecar).parent
    entries: dict[str, dict[str, str]] = {}
    rows: list[list[int]] = []
    for index in tqdm(range(settings.photos), desc="demo photos", unit="photo"):
        where = draw_placement(rng, settings)
        scene = background(rng, where.width, where.height)
        photo, box = compose(head, face_side, scene, where)
        as_png = settings.png_every > 0 and index % settings.png_every == settings.png_every - 1
        name = f"demo_{index:04d}.{'png' if as_png else 'jpg'}"
        fileio.write_bytes(folder / name, encode(photo, as_png, int(rng.integers(80, 96))))
        entries[name] = attribution(index)
        rows.append(labels(scene, box, where))
    stale = [p for p in folder.glob("demo_*.*") if p.name not in entries]
    for path in stale:  # left by an earlier, larger demo: they would be crawled without a licence
        path.unlink()
    attributes.write(attributes_file(sidecar), list(entries), list(ATTRIBUTES), np.array(rows).reshape(-1, 2))
    fileio.write_json(sidecar, entries)
    log.info("wrote %d demo photos to %s (removed %d stale ones)", len(entries), folder, len(stale))
    return entries


def face_labels(photo_labels: Path, face_chunks: list[Path], images: Path, out: Path) -> int:
    """Carry the photos' labels to their aligned faces: an attribute file over the aligned images.

    Each face takes its photo's row; names are the aligned PNGs' paths relative to
    `images`, the folder align writes them to. Returns the number of faces.
    """
    table = attributes.read(photo_labels)
    row_of = {name: k for k, name in enumerate(table.names)}
    names, rows = [], []
    for chunk in face_chunks:
        for face in fileio.read_jsonl(chunk):
            if face.get("status") == "ok" and face.get("source_id") in row_of:
                names.append(Path(os.path.relpath(face["image"], images)).as_posix())
                rows.append(table.labels[row_of[face["source_id"]]])
    attributes.write(out, names, list(table.attributes), np.array(rows, np.int8).reshape(len(rows), -1))
    log.info("labelled %d aligned faces with %s", len(names), ", ".join(table.attributes))
    return len(names)
