"""What a result drawn from a generator records of it: the file's sha256 and the dataset it trained on.

Metric results carry it as a field; figures carry it inside the PNG, so a picture
copied out of the results still says which model and which data made it.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

from stylegan import fileio
from stylegan.model.files import load

PNG_KEY = "stylegan-provenance"  # the iTXt keyword figures carry their generators' provenance under


def of_generator(path: Path) -> dict[str, Any]:
    """What a result drawn from the generator file `path` records of it: its sha256 and its dataset.

    `dataset` is None for files written before generators recorded their data.
    """
    return {"generator": str(path), "generator_sha256": fileio.sha256_file(path), "dataset": load(path).get("dataset")}


def tagged_png(png: bytes, generators: list[Path]) -> bytes:
    """A PNG drawn from `generators`, their `provenance` added as JSON in an iTXt chunk keyed PNG_KEY.

    The chunk (PNG spec 11.3.4.5: keyword, no compression, no language) goes just
    before IEND, so the pixels are not re-encoded; image viewers ignore it, and
    `png_provenance` (the report, `stylegan dataset provenance`) reads it back.
    """
    text = json.dumps([of_generator(g) for g in generators], sort_keys=True)
    data = PNG_KEY.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8")
    chunk = struct.pack(">I", len(data)) + b"iTXt" + data + struct.pack(">I", zlib.crc32(b"iTXt" + data))
    end = png.rindex(b"IEND") - 4  # the IEND chunk starts with its 4-byte length
    return png[:end] + chunk + png[end:]


def png_provenance(path: Path) -> list[dict[str, Any]] | None:
    """The generators' provenance a figure carries (`tagged_png`), or None for an untagged image."""
    from PIL import Image

    with Image.open(path) as image:
        text = image.text.get(PNG_KEY)
    return None if text is None else json.loads(text)
