"""The align stage with real dlib models on real images made from skimage's astronaut."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from stylegan import cli, fileio
from stylegan.data import align, align_chunk, landmarks, photo
from stylegan.data.demo import astronaut_head
from stylegan.data.records import CATALOGUE_KEYS, DOWNLOAD_KEYS, FACE_KEYS, face_record
from stylegan.settings import SettingsError, load

ROOT = Path(__file__).resolve().parents[1]
GREY = (120, 130, 140)
# Small crops keep the suite fast; the geometry test uses FFHQ's own 4096 transform.
FAST = {"output_size": 64, "transform_size": 256, "workers": 1}


@pytest.fixture(scope="module")
def head() -> Image.Image:
    """The astronaut's head, scaled so the face box is about 180 px (a typical photo face)."""
    crop, face_side = astronaut_head()
    scale = 180 / face_side
    return crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.LANCZOS)


@pytest.fixture(scope="module")
def finder() -> landmarks.FaceFinder:
    return landmarks.finder("hog", 1)


def scene(head: Image.Image, size: tuple[int, int], *corners: tuple[int, int]) -> Image.Image:
    """A plain background with the head pasted at each corner position."""
    canvas = Image.new("RGB", size, GREY)
    for corner in corners:
        canvas.paste(head, corner)
    return canvas


def save(image: Image.Image, path: Path, **params) -> Path:
    image.save(path, **params)
    return path


def only_face(finder: landmarks.FaceFinder, pixels: np.ndarray) -> landmarks.Detection:
    faces = finder.find(pixels)
    assert len(faces) == 1, f"expected one face, found {len(faces)}"
    return faces[0]


def eyes_and_mouth(lm: np.ndarray) -> np.ndarray:
    """The three points FFHQ's quad is built from (NVlabs/ffhq-dataset download_ffhq.py)."""
    return np.array([lm[36:42].mean(0), lm[42:48].mean(0), (lm[48] + lm[54]) / 2])


# --- geometry ----------------------------------------------------------------

ANGLE, SCALE, SHIFT = np.deg2rad(12.0), 1.4, np.array([130.0, 90.0])
MATRIX = SCALE * np.array([[np.cos(ANGLE), -np.sin(ANGLE)], [np.sin(ANGLE), np.cos(ANGLE)]])


def moved(points: np.ndarray) -> np.ndarray:
    """Points under the known similarity: rotate 12°, scale 1.4, shift (130, 90)."""
    return points @ MATRIX.T + SHIFT


def moved_photo(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The photo under the same similarity (Pillow's AFFINE takes the inverse map)."""
    inverse = np.linalg.inv(MATRIX)
    offset = -inverse @ SHIFT
    coeffs = (*inverse[0], offset[0], *inverse[1], offset[1])
    return image.transform(size, Image.AFFINE, coeffs, Image.BICUBIC, fillcolor=GREY)


def test_quad_follows_a_similarity_exactly():
    rng = np.random.default_rng(0)
    lm = rng.uniform(100, 300, size=(68, 2))
    quad, qsize = align.face_quad(lm)
    quad2, qsize2 = align.face_quad(moved(lm))
    np.testing.assert_allclose(quad2, moved(quad), atol=1e-9)
    assert qsize2 == pytest.approx(qsize * SCALE)
    np.testing.assert_allclose(np.linalg.norm(quad[1] - quad[0]), qsize)  # a square of side qsize
    level, _ = align.face_quad(lm, rotate=False)
    assert level[0, 1] == level[3, 1] and level[0, 0] == level[1, 0]  # axis-aligned without rotation


SPREAD = np.array([[-6, 0], [6, 0], [-3, -2], [3, -2], [-3, 2], [3, 2]], dtype=float)  # mean (0, 0)


def hand_landmarks(eye_left, eye_right, mouth_left, mouth_right) -> np.ndarray:
    """68 points whose 6-point eye means and mouth corners (48, 54) are the given points.

    Every other point is far away: FFHQ's quad uses only those four.
    """
    lm = np.full((68, 2), 5000.0)
    lm[36:42] = np.asarray(eye_left, float) + SPREAD
    lm[42:48] = np.asarray(eye_right, float) + SPREAD[::-1]
    lm[48], lm[54] = mouth_left, mouth_right
    return lm


# Hand computation from FFHQ's definition (NVlabs/ffhq-dataset download_ffhq.py):
# eye_avg, e2e = eye_right - eye_left, e2m = mouth_avg - eye_avg; x = e2e - rot90(e2m),
# normalised, times max(2.0 |e2e|, 1.8 |e2m|); y = rot90(x); c = eye_avg + 0.1 e2m;
# quad = c-x-y, c-x+y, c+x+y, c+x-y; side = 2 |x|.
HAND_QUADS = {
    # level: eyes (90,100), (130,100); mouth avg (110,140): e2e (40,0), e2m (0,40);
    # x = (80,0) -> (1,0) * max(80, 72); c = (110,104).
    "level": (
        ((90, 100), (130, 100), (100, 140), (120, 140)),
        True,
        [[30, 24], [30, 184], [190, 184], [190, 24]],
        160.0,
    ),
    # the mouth term wins: e2m (0,60), 1.8 * 60 = 108 > 80; c = (110,106).
    "long_chin": (
        ((90, 100), (130, 100), (100, 160), (120, 160)),
        True,
        [[2, -2], [2, 214], [218, 214], [218, -2]],
        216.0,
    ),
    # rotated by atan2(3,4): e2e (32,24), e2m (-24,32), both of length 40; eye_avg (116,112);
    # x = (64,48) -> (0.8,0.6) * 80 = (64,48), y = (-48,64); c = (113.6,115.2).
    "rotated": (
        ((100, 100), (132, 124), (82, 144), (102, 144)),
        True,
        [[97.6, 3.2], [1.6, 131.2], [129.6, 227.2], [225.6, 99.2]],
        160.0,
    ),
    # the same face with rotate false: x = (80,0), y = (0,80) about the same centre.
    "rotated_unlevelled": (
        ((100, 100), (132, 124), (82, 144), (102, 144)),
        False,
        [[33.6, 35.2], [33.6, 195.2], [193.6, 195.2], [193.6, 35.2]],
        160.0,
    ),
}


@pytest.mark.parametrize("case", sorted(HAND_QUADS))
def test_quad_matches_a_hand_computation_of_ffhq(case):
    points, rotate, corners, side = HAND_QUADS[case]
    quad, qsize = align.face_quad(hand_landmarks(*points), rotate=rotate)
    np.testing.assert_allclose(quad, corners, atol=1e-9)
    assert qsize == pytest.approx(side, abs=1e-9)


def level_face(eye_distance: float, centre_x: float, eye_y: float = 150.0) -> np.ndarray:
    """A level face whose quad (eye term winning) has side 4 x eye_distance, centred on centre_x."""
    half = eye_distance / 2
    mouth = (centre_x - half / 2, eye_y + eye_distance * 0.5), (centre_x + half / 2, eye_y + eye_distance * 0.5)
    return hand_landmarks((centre_x - half, eye_y), (centre_x + half, eye_y), *mouth)


def test_shrink_starts_at_a_quad_of_four_output_sides():
    """shrink = floor(qsize / output_size * 0.5): 2 at qsize 256 for 64 px output, 1 just below."""
    photo = np.full((700, 700, 3), 128, np.uint8)
    at_edge = align.align(photo, level_face(64.0, 350.0, 300.0), output_size=64, transform_size=64)
    below = align.align(photo, level_face(63.9, 350.0, 300.0), output_size=64, transform_size=64)
    assert (at_edge.qsize, at_edge.shrink) == (pytest.approx(256.0), 2)
    assert (below.qsize, below.shrink) == (pytest.approx(255.6), 1)


def test_padding_starts_when_the_quad_comes_within_three_pixels_of_the_edge():
    """pad = border - distance; FFHQ pads when pad > border - 4, i.e. at distances 0..3 px.

    An eye distance of 40 gives qsize 160, border rint(16) = 16; the quad's left
    side lies at centre_x - 80.
    """
    photo = np.full((400, 400, 3), 128, np.uint8)
    three, four = level_face(40.0, 83.0), level_face(40.0, 84.0)
    assert align.face_quad(three)[0][:, 0].min() == 3.0 and align.face_quad(four)[0][:, 0].min() == 4.0
    assert align.align(photo, three, 64, 64).padded
    assert not align.align(photo, four, 64, 64).padded


def test_small_faces_always_pad_because_the_border_is_at_least_three():
    """border = max(rint(0.1 qsize), 3): a centred face has pad 0, and 0 > border - 4 holds
    while border is 3, i.e. for qsize < 35 (rint(3.4) = 3, rint(3.6) = 4)."""
    photo = np.full((200, 200, 3), 128, np.uint8)
    small, larger = level_face(8.5, 100.0, 100.0), level_face(9.0, 100.0, 100.0)
    assert align.face_quad(small)[1] == pytest.approx(34.0) and align.face_quad(larger)[1] == pytest.approx(36.0)
    assert align.align(photo, small, 64, 64).padded
    assert not align.align(photo, larger, 64, 64).padded


def test_padding_widths_and_edge_blur_follow_ffhq():
    """A 60² black photo with a white first column, a quad 1 px over its left edge, qsize 500.

    pad = max(border + overhang, rint(0.3 qsize)) = 150 on every side, so 360² and the
    quad moves by 150. At the photo's old edge the blend weight is 1 and the median's 0,
    so the white column becomes its own Gaussian blur (sigma 0.02 qsize = 10) there:
    255 / (sqrt(2 pi) 10) = 10.17, which rounds to 10.
    """
    pixels = np.zeros((60, 60, 3), np.uint8)
    pixels[:, 0] = 255
    quad = np.array([[-1.0, 5.0], [-1.0, 55.0], [49.0, 55.0], [49.0, 5.0]])
    img, moved, padded = align._pad(Image.fromarray(pixels), quad, 500.0, border=50)
    assert padded and img.size == (360, 360)
    np.testing.assert_array_equal(moved, quad + 150)
    assert tuple(np.asarray(img)[180, 150]) == (10, 10, 10)


def test_degenerate_landmarks_are_an_align_error():
    with pytest.raises(align.AlignError, match="degenerate"):
        align.face_quad(np.full((68, 2), 50.0))
    with pytest.raises(align.AlignError, match="68 finite"):
        align.face_quad(np.full((68, 2), np.nan))


def test_rotated_scaled_shifted_photo_gives_the_same_crop(head, finder):
    """Landmarks found on the two aligned crops (256², FFHQ's 4096 transform) agree.

    dlib returns integer landmarks, so two detections of the same face differ by
    about half a pixel from rounding alone, and jaw points slide along the jaw.
    Measured: mean 0.70 px, max 2.2 px over the 68 points; the eye and mouth
    averages that define the crop within 0.7 px. Tolerances: mean and eye/mouth
    averages within 1 px, any single point within 3 px.
    """
    original = scene(head, (700, 700), (200, 150))
    other = moved_photo(original, (1200, 1100))
    a_pixels, b_pixels = np.asarray(original), np.asarray(other)
    lm_a, lm_b = only_face(finder, a_pixels).landmarks, only_face(finder, b_pixels).landmarks
    # the detector saw the same face (source eye/mouth averages measured within 0.83 px)
    assert np.linalg.norm(eyes_and_mouth(moved(lm_a)) - eyes_and_mouth(lm_b), axis=1).max() < 1.5

    a = align.align(a_pixels, lm_a, output_size=256)
    b = align.align(b_pixels, lm_b, output_size=256)
    assert a.qsize * SCALE == pytest.approx(b.qsize, rel=0.03)
    on_a, on_b = only_face(finder, a.image).landmarks, only_face(finder, b.image).landmarks
    distance = np.linalg.norm(on_a - on_b, axis=1)
    assert distance.mean() < 1.0 and distance.max() < 3.0, distance
    assert np.linalg.norm(eyes_and_mouth(on_a) - eyes_and_mouth(on_b), axis=1).max() < 1.0
    assert np.abs(a.image.astype(int) - b.image).mean() < 5  # and the pixels agree (measured 2.6)


def test_same_landmarks_moved_give_the_same_pixels(head):
    """With the landmarks moved exactly, only resampling separates the two crops."""
    original = scene(head, (700, 700), (200, 150))
    other = moved_photo(original, (1200, 1100))
    lm = landmarks.finder("hog", 1).find(np.asarray(original))[0].landmarks
    a = align.align(np.asarray(original), lm, output_size=128, transform_size=1024)
    b = align.align(np.asarray(other), moved(lm), output_size=128, transform_size=1024)
    np.testing.assert_allclose(b.quad, moved(a.quad), atol=1e-9)
    assert np.abs(a.image.astype(int) - b.image).mean() < 3


def test_padding_runs_only_when_the_face_is_near_the_border(head, finder):
    centred = np.asarray(scene(head, (800, 800), (250, 250)))
    cornered = np.asarray(scene(head, (600, 600), (-60, -70)))
    lm_c, lm_e = only_face(finder, centred).landmarks, only_face(finder, cornered).landmarks
    assert not align.align(centred, lm_c, 64, 256).padded
    padded = align.align(cornered, lm_e, 64, 256)
    assert padded.padded
    assert padded.image[:3, :3].mean() > 40  # the corner outside the photo is filled, not black
    bare = align.align(cornered, lm_e, 64, 256, padding=False)  # FFHQ-U: no padding
    assert not bare.padded and bare.image[:2, :2].max() == 0


def test_large_faces_shrink_the_photo_first(head, finder):
    big = head.resize((head.width * 3, head.height * 3), Image.LANCZOS)  # face ~540 px, qsize > 4*64
    pixels = np.asarray(scene(big, (big.width + 200, big.height + 200), (100, 100)))
    face = only_face(finder, pixels)
    result = align.align(pixels, face.landmarks, 64, 256)
    assert result.shrink == int(np.floor(result.qsize / 64 * 0.5)) > 1
    np.testing.assert_allclose(result.quad, align.face_quad(face.landmarks)[0])  # recorded in source pixels


def test_detection_on_a_smaller_copy_finds_the_same_face(head, finder):
    """`detect_max_side`: boxes come back in full-photo pixels; landmarks are unchanged in substance."""
    big = head.resize((head.width * 2, head.height * 2), Image.LANCZOS)
    pixels = np.asarray(scene(big, (1600, 1200), (500, 300)))
    full = only_face(finder, pixels)
    small = only_face(landmarks.finder("hog", 1, 600), pixels)
    side, small_side = full.rect[2] - full.rect[0], small.rect[2] - small.rect[0]
    assert 5 / 6 - 0.02 < small_side / side < 6 / 5 + 0.02  # within one step of dlib's pyramid_down<6>
    centre = np.subtract(full.rect[:2], small.rect[:2]) + np.subtract(full.rect[2:], small.rect[2:])
    assert np.abs(centre / 2).max() < 0.1 * side
    moved_by = np.linalg.norm(eyes_and_mouth(full.landmarks) - eyes_and_mouth(small.landmarks), axis=1)
    assert moved_by.max() < 2.0, moved_by  # a 360 px face: under 0.6% of its size


def test_cnn_detector_finds_the_face_with_a_confidence(head, finder):
    crop, _ = astronaut_head()  # the unscaled head (face ~91 px) keeps the CNN quick on a CPU
    pixels = np.asarray(scene(crop, (320, 300), (60, 50)))
    hog, cnn = only_face(finder, pixels), only_face(landmarks.finder("cnn", 0), pixels)
    assert cnn.score > 0
    assert np.linalg.norm(eyes_and_mouth(hog.landmarks) - eyes_and_mouth(cnn.landmarks), axis=1).max() < 3


# --- decoding ----------------------------------------------------------------


def test_exif_orientation_is_applied(head, finder, tmp_path):
    upright = scene(head, (500, 400), (150, 100))
    stored = upright.transpose(Image.ROTATE_90)  # the camera wrote it sideways (90° counter-clockwise)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation 6: display after turning 90° clockwise
    path = save(stored, tmp_path / "sideways.jpg", exif=exif, quality=95)
    pixels = photo.decode(path, 10**8)
    assert pixels.shape == (400, 500, 3)
    assert np.abs(pixels.astype(int) - np.asarray(upright)).mean() < 3
    assert finder.find(pixels) and not finder.find(np.asarray(stored))  # upright finds it, raw would not


def test_alpha_is_composited_on_white(head, tmp_path):
    rgba = scene(head, (500, 500), (150, 150)).convert("RGBA")
    rgba.putalpha(0)
    ImageDraw.Draw(rgba).ellipse((120, 120, 380, 380), fill=None)
    alpha = Image.new("L", rgba.size, 0)
    ImageDraw.Draw(alpha).ellipse((130, 110, 370, 390), fill=255)
    rgba.putalpha(alpha)
    pixels = photo.decode(save(rgba, tmp_path / "cutout.png"), 10**8)
    assert pixels.dtype == np.uint8 and pixels.shape == (500, 500, 3)
    assert (pixels[:20, :20] == 255).all()


def test_cmyk_greyscale_palette_and_16_bit_become_rgb(head, tmp_path):
    rgb = scene(head, (300, 300), (50, 50))
    cmyk = photo.decode(save(rgb.convert("CMYK"), tmp_path / "cmyk.jpg", quality=95), 10**8)
    assert np.abs(cmyk.astype(int) - np.asarray(rgb)).mean() < 6
    grey = photo.decode(save(rgb.convert("L"), tmp_path / "grey.jpg"), 10**8)
    assert grey.shape == (300, 300, 3) and (grey[..., 0] == grey[..., 2]).all()
    palette = photo.decode(save(rgb.convert("P"), tmp_path / "palette.png"), 10**8)
    assert palette.shape == (300, 300, 3)
    wide = Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)
    assert wide.mode.startswith("I;16")
    sixteen = photo.decode(save(wide, tmp_path / "sixteen.png"), 10**8)
    np.testing.assert_array_equal(sixteen[..., 1], np.asarray(rgb.convert("L")))


def test_corrupt_and_truncated_files_are_refused(head, tmp_path):
    good = io.BytesIO()
    scene(head, (300, 300), (50, 50)).save(good, format="JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    with pytest.raises(photo.PhotoError, match="truncated"):
        photo.decode(truncated, 10**8)
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG" * 10)
    with pytest.raises(photo.PhotoError, match="corrupt|not an image"):
        photo.decode(garbage, 10**8)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims `width`x`height` and holds almost nothing: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(60_000, 60_000))  # 3.6 gigapixels; Pillow's own hard limit
    with pytest.raises(photo.PhotoError, match="decompression bomb"):
        photo.decode(bomb, 100_000_000)
    big = tmp_path / "big.png"
    big.write_bytes(png_header_only(12_000, 10_000))  # over our limit, under Pillow's
    with pytest.raises(photo.PhotoError, match="120000000 pixels exceeds align.max_image_pixels"):
        photo.decode(big, 100_000_000)


# --- the chunk driver --------------------------------------------------------


def photo_record(path: Path, name: str) -> dict:
    record = {key: None for key in CATALOGUE_KEYS + DOWNLOAD_KEYS}
    record.update(photo_id=f"folder:{name}", source="folder", source_id=name, path=str(path), status="ok",
                  license_id="public-domain", owner_name="NASA")  # fmt: skip
    return record


THREE_AT = ((40, 90), (430, 70), (820, 110))  # where three_faces pastes its heads


def three_faces(head: Image.Image) -> Image.Image:
    """Three different faces in one photo: the head, its mirror image, and the head a little smaller."""
    canvas = Image.new("RGB", (1200, 420), GREY)
    small = head.resize((round(head.width * 0.85), round(head.height * 0.85)), Image.LANCZOS)
    for face, corner in zip((head, head.transpose(Image.FLIP_LEFT_RIGHT), small), THREE_AT):
        canvas.paste(face, corner)
    return canvas


def odd_photos(head: Image.Image, folder: Path) -> dict[str, Path]:
    """One photo per documented outcome."""
    folder.mkdir(parents=True, exist_ok=True)
    face = scene(head, (560, 540), (90, 80))
    cutout = face.convert("RGBA")
    alpha = Image.new("L", face.size, 0)
    ImageDraw.Draw(alpha).ellipse((80, 60, 480, 480), fill=255)
    cutout.putalpha(alpha)
    good = io.BytesIO()
    face.save(good, format="JPEG")
    ramp = np.linspace(0, 255, 400 * 400 * 3).reshape(400, 400, 3).astype(np.uint8)
    photos = {
        "alpha.png": save(cutout, folder / "alpha.png"),
        "cmyk.jpg": save(face.convert("CMYK"), folder / "cmyk.jpg", quality=95),
        "grey.jpg": save(face.convert("L"), folder / "grey.jpg", quality=95),
        "one_pixel.png": save(Image.new("RGB", (1, 1), GREY), folder / "one_pixel.png"),
        "no_face.jpg": save(Image.fromarray(ramp), folder / "no_face.jpg"),
        "three.jpg": save(three_faces(head), folder / "three.jpg"),
        "corrupt.jpg": folder / "corrupt.jpg",
    }
    photos["corrupt.jpg"].write_bytes(good.getvalue()[:3000])
    return photos


EXPECTED = {  # file: statuses of its records, in order
    "alpha.png": ["ok"],
    "cmyk.jpg": ["ok"],
    "grey.jpg": ["ok"],
    "one_pixel.png": ["no_face"],
    "no_face.jpg": ["no_face"],
    "three.jpg": ["ok", "ok", "ok"],
    "corrupt.jpg": ["unreadable"],
}


def write_chunk(photos: dict[str, Path], path: Path, failed: bool = True) -> list[dict]:
    records = [photo_record(p, name) for name, p in photos.items()]
    if failed:  # a crawl failure: not the align stage's business, skipped
        records.append({**photo_record(Path("missing.jpg"), "missing.jpg"), "status": "failed", "reason": "404"})
    fileio.write_jsonl(path, records)
    return records


def test_every_odd_photo_gets_its_documented_outcome(head, tmp_path):
    photos = odd_photos(head, tmp_path / "photos")
    chunk = tmp_path / "crawl" / "007.jsonl"
    write_chunk(photos, chunk)
    out, report = tmp_path / "align" / "007.jsonl", tmp_path / "align" / "007.json"
    settings = align.AlignSettings(**{**FAST, "workers": 2})  # the process pool path
    counts = align_chunk.align_chunk(settings, chunk, tmp_path / "faces", out, report)

    faces = fileio.read_jsonl(out)
    by_photo: dict[str, list[dict]] = {}
    for face in faces:
        by_photo.setdefault(face["photo_id"].split(":", 1)[1], []).append(face)
    assert {name: [f["status"] for f in group] for name, group in by_photo.items()} == EXPECTED
    assert counts == {"ok": 6, "no_face": 2, "unreadable": 1}
    assert "truncated" in by_photo["corrupt.jpg"][0]["reason"]
    for face in faces:
        assert set(face) == set(CATALOGUE_KEYS + DOWNLOAD_KEYS + FACE_KEYS)
        assert face["owner_name"] == "NASA"  # attribution travels with every face
        if face["status"] != "ok":
            assert face["face_id"] is None and face["image"] is None and face["reason"]
            continue
        assert face["face_id"] == f"{face['photo_id']}#{face['face_index']}"
        pixels = np.asarray(Image.open(face["image"]))
        assert pixels.shape == (64, 64, 3)
        assert hashlib.md5(pixels.tobytes()).hexdigest() == face["md5"]
        assert len(face["landmarks"]) == 68 and len(face["quad"]) == 4 and face["score"] > 0
    three = by_photo["three.jpg"]
    assert [f["face_index"] for f in three] == [0, 1, 2] and len({f["image"] for f in three}) == 3
    assert_each_record_holds_its_own_face(three, head)
    summary = json.loads(report.read_text())
    assert summary["counts"] == counts and summary["photos"] == 7
    assert {f["status"] for f in summary["failures"]} == {"no_face", "unreadable"}
    assert not align_chunk.wip_path(out).exists()


def assert_each_record_holds_its_own_face(records: list[dict], head: Image.Image) -> None:
    """Distinct rects, landmarks, quads and pixels; each quad centred on its own rect, one per pasted head."""
    for key in ("rect", "md5"):
        assert len({str(r[key]) for r in records}) == len(records), key
    for key in ("landmarks", "quad"):
        for a, b in itertools.combinations(records, 2):
            assert np.linalg.norm(np.subtract(a[key], b[key]), axis=1).min() > 100, key  # every point moved
    pasted = [(x, x + w) for (x, _), w in zip(THREE_AT, (head.width, head.width, round(head.width * 0.85)))]
    for record in records:
        left, top, right, bottom = record["rect"]
        centre = np.mean(record["quad"], axis=0)
        assert left < centre[0] < right and top < centre[1] < bottom  # FFHQ's quad centre is on the face
        assert np.hypot(*(centre - [(left + right) / 2, (top + bottom) / 2])) < 0.25 * (right - left)
        lm = np.asarray(record["landmarks"])
        assert (lm[:, 0] > left - 0.5 * (right - left)).all() and (lm[:, 0] < right + 0.5 * (right - left)).all()
    rects_in = sorted(
        next(i for i, (a, b) in enumerate(pasted) if a <= r["rect"][0] and r["rect"][2] <= b) for r in records
    )
    assert rects_in == [0, 1, 2]  # one face per pasted head
    images = [np.asarray(Image.open(r["image"])).astype(int) for r in records]
    for a, b in itertools.combinations(images, 2):
        assert np.abs(a - b).mean() > 2  # three different crops, not one crop three times


def test_resume_after_kill_skips_finished_photos(head, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = {}
    for index in range(10):
        corner = (40 + 17 * index, 60 + 11 * index)
        photos[f"p{index}.jpg"] = save(scene(head, (480, 460), corner), folder / f"p{index}.jpg")
    chunk, out, report = tmp_path / "000.jsonl", tmp_path / "align" / "000.jsonl", tmp_path / "align" / "000.json"
    write_chunk(photos, chunk, failed=False)
    settings = {"output_size": 256, "transform_size": 2048, "workers": 1}
    command = [
        sys.executable,
        "-m",
        "stylegan.cli",
        "align",
        "--settings",
        json.dumps(settings),
        "--photos",
        str(chunk),
        "--images",
        str(tmp_path / "faces"),
        "--out",
        str(out),
        "--report",
        str(report),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    journal = align_chunk.wip_path(out)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(fileio.read_jsonl(journal)) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = fileio.read_jsonl(journal)
    assert 3 <= len(done) < 10 and not out.exists(), "the kill must land mid-chunk"
    written = {f["image"]: os.stat(f["image"]).st_mtime_ns for e in done for f in e["faces"]}

    counts = align_chunk.align_chunk(load(align.AlignSettings, settings), chunk, tmp_path / "faces", out, report)
    assert counts == {"ok": 10}
    assert {image: os.stat(image).st_mtime_ns for image in written} == written  # not redone
    faces = fileio.read_jsonl(out)
    assert [f["photo_id"] for f in faces] == [f"folder:p{i}.jpg" for i in range(10)]
    assert not journal.exists() and not list((tmp_path / "faces").rglob(".*.tmp"))


def test_a_face_that_cannot_be_aligned_is_recorded(tmp_path):
    record = photo_record(tmp_path / "x.jpg", "x.jpg")
    flat = landmarks.Detection((10, 10, 50, 50), 0.5, np.full((68, 2), 30.0))  # eyes and mouth coincide
    face = align_chunk._align_face(
        record, np.zeros((64, 64, 3), np.uint8), 0, flat, align.AlignSettings(**FAST), tmp_path
    )
    assert face["status"] == "align_failed" and "degenerate" in face["reason"]
    assert face["face_id"] == "folder:x.jpg#0" and face["rect"] == [10, 10, 50, 50] and face["image"] is None


def test_changed_settings_redo_journalled_photos(head, tmp_path):
    photos = {"a.jpg": save(scene(head, (420, 400), (100, 90)), tmp_path / "a.jpg")}
    chunk, out, report = tmp_path / "000.jsonl", tmp_path / "out.jsonl", tmp_path / "report.json"
    write_chunk(photos, chunk, failed=False)
    old_image = save(Image.new("RGB", (32, 32)), tmp_path / "old.png")  # still in place: only settings differ
    stale = face_record(photo_record(photos["a.jpg"], "a.jpg"), status="ok", image=str(old_image))
    with fileio.Journal(align_chunk.wip_path(out), key=lambda e: e["photo_id"]) as journal:
        journal.record({"photo_id": "folder:a.jpg", "faces": [stale], "settings": "old"})
    align_chunk.align_chunk(align.AlignSettings(**FAST), chunk, tmp_path / "faces", out, report)
    [face] = fileio.read_jsonl(out)
    assert face["image"] != str(old_image) and face["output_size"] == 64


def test_cli_rejects_bad_settings_with_the_key(tmp_path, caplog):
    args = [
        "align",
        "--settings",
        '{"detector": "mtcnn"}',
        "--photos",
        str(tmp_path / "x.jsonl"),
        "--images",
        str(tmp_path),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--report",
        str(tmp_path / "r.json"),
    ]
    assert cli.main(args) == 2
    assert "align.detector" in caplog.text
    with pytest.raises(SettingsError, match="align.transform_size"):
        load(align.AlignSettings, {"output_size": 1024, "transform_size": 512}, "align")
    args[2] = "{}"
    assert cli.main(args) == 2 and "does not exist" in caplog.text
