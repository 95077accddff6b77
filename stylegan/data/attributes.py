"""Face attribute labels in CelebA's `list_attr_celeba.txt` format, and CelebA-HQ's name mapping.

The format (Liu et al., CelebA, "Anno/list_attr_celeba.txt"): line 1 the number of
images, line 2 the attribute names, then one line per image: its file name and one
label per attribute, 1 or -1, separated by spaces. The demo writes its labels in it
and the attribute classifiers read it, so one reader and one writer serve both.

CelebA-HQ's images are named by their index (0.jpg ... 29999.jpg); a mapping file
(`CelebA-HQ-to-CelebA-mapping.txt` of CelebAMask-HQ, or progressive GAN's
`image_list.txt`) has a header with at least `idx` and `orig_file` and says which
CelebA image each one is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stylegan import fileio
from stylegan.data.photo import IMAGE_SUFFIXES
from stylegan.errors import StageError


@dataclass(frozen=True)
class AttributeTable:
    """Labels [images, attributes] of +1 / -1 (int8), rows in file order."""

    names: tuple[str, ...]
    attributes: tuple[str, ...]
    labels: np.ndarray

    def column(self, attribute: str, source: Path | str) -> np.ndarray:
        """One attribute's labels; an unknown name is a StageError listing the file's names."""
        if attribute not in self.attributes:
            raise StageError(f"{source}: no attribute {attribute!r}; it has {', '.join(self.attributes)}")
        return self.labels[:, self.attributes.index(attribute)]


def write(path: Path, names: list[str], attributes: list[str], labels: np.ndarray) -> None:
    """Write the table atomically in CelebA's format."""
    rows = [f"{name} " + " ".join(f"{int(v):2d}" for v in row) for name, row in zip(names, labels)]
    fileio.write_text(path, "\n".join([str(len(names)), " ".join(attributes), *rows]) + "\n")


def read(path: Path) -> AttributeTable:
    """Parse and check an attribute file: its count line, one label per name, each 1 or -1."""
    lines = [line.split() for line in _lines(path)]
    (count, attributes), rows = _header(path, lines[:2]), lines[2:]
    if count != len(rows):
        raise StageError(
            f"{path}: line 1 says {count} images but {len(rows)} lines follow; the file is cut or "
            "edited, download it again"
        )
    for number, row in enumerate(rows, start=3):
        if len(row) != len(attributes) + 1:
            raise StageError(f"{path}: line {number} has {len(row) - 1} labels for {len(attributes)} attributes")
        bad = [v for v in row[1:] if v not in ("1", "-1")]
        if bad:
            raise StageError(f"{path}: line {number} ({row[0]}) has label {bad[0]!r}; labels are 1 or -1")
    labels = np.array([[int(v) for v in row[1:]] for row in rows], dtype=np.int8).reshape(len(rows), len(attributes))
    return AttributeTable(tuple(row[0] for row in rows), attributes, labels)


def attribute_names(path: Path) -> tuple[str, ...]:
    """The attribute names of a file, checked but without parsing its labels: the workflow
    lists one classifier job per name each time it starts."""
    return _header(path, [line.split() for line in _lines(path)[:2]])[1]


def _header(path: Path, lines: list[list[str]]) -> tuple[int, tuple[str, ...]]:
    """The image count and attribute names from the first two non-blank lines, split."""
    if len(lines) < 2 or len(lines[0]) != 1 or not lines[0][0].isdigit():
        raise StageError(
            f"{path}: not CelebA's attribute format (line 1: the image count, line 2: the attribute "
            "names, then 'file label label ...')"
        )
    return int(lines[0][0]), tuple(lines[1])


def read_mapping(path: Path) -> dict[str, str]:
    """CelebA-HQ index -> CelebA file name, from a mapping file's `idx` and `orig_file` columns."""
    lines = [line.split() for line in _lines(path)]
    header = lines[0] if lines else []
    if "idx" not in header or "orig_file" not in header:
        raise StageError(
            f"{path}: a mapping file's first line names its columns, with 'idx' and 'orig_file' "
            "(CelebAMask-HQ's CelebA-HQ-to-CelebA-mapping.txt)"
        )
    i, j = header.index("idx"), header.index("orig_file")
    return {row[i]: row[j] for row in lines[1:]}


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise StageError(f"{path}: cannot read the file ({err})") from None


def labelled_images(
    folder: Path, table: AttributeTable, source: Path, mapping: dict[str, str] | None = None
) -> tuple[list[Path], np.ndarray]:
    """The images of `folder` with their label rows; every labelled name must be an image there.

    Without a mapping the table's names are paths relative to the folder (file names
    for a flat folder); with one, image `<idx>.<ext>` takes the row of CelebA file `mapping[idx]`.
    """
    if not Path(folder).is_dir():
        raise StageError(f"{folder}: the folder of labelled faces does not exist")
    files = {
        p.relative_to(folder).as_posix(): p
        for p in sorted(Path(folder).rglob("*"))
        if p.suffix.lower() in IMAGE_SUFFIXES
    }
    row_of = {name: k for k, name in enumerate(table.names)}
    if mapping is None:
        wanted = [(name, name) for name in table.names]
    else:
        stems = {p.stem: name for name, p in files.items() if "/" not in name}
        wanted = [(stems.get(idx, f"{idx}.jpg"), orig) for idx, orig in mapping.items()]
    missing = [image for image, _ in wanted if image not in files]
    unlabelled = [orig for _, orig in wanted if orig not in row_of]
    if missing or unlabelled:
        example = (missing or unlabelled)[0]
        raise StageError(
            f"{source} and {folder} do not match: {len(missing)} labelled images are not in the "
            f"folder, {len(unlabelled)} mapped images have no labels (e.g. {example}); use the "
            "attribute file (and mapping file) that came with these images"
        )
    return [files[image] for image, _ in wanted], table.labels[[row_of[orig] for _, orig in wanted]]
