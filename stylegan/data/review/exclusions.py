"""The exclusion list as the review page writes it: one face id per line, the reason as a comment.

`filter.read_id_list` reads the same file (ids, `#` comments after whitespace), so
a mark takes effect at the next filter run. Lines the page did not write (photo
ids, a person's notes) are kept as they are. Every change is a read of the whole
file and an atomic rewrite (`fileio.write_text`), so a hand edit made while the
page runs is kept, and a killed server leaves the old or the new file, never half.
"""

from __future__ import annotations

from pathlib import Path

from stylegan import fileio
from stylegan.data.filter import COMMENT

# Why a person rejects a face: the paper's statues, paintings and photos of photos (Appendix A), and two more.
REASONS = {
    "statue": "statue",
    "painting": "painting",
    "photo": "photo of a photo",
    "not_face": "not a face",
    "other": "other",
}
HEADER = "# faces rejected by a person (stylegan review): face id, then the reason"


def split(line: str) -> tuple[str, str]:
    """A list line's id and its comment text (empty when none)."""
    match = COMMENT.search(line)
    if match is None:
        return line.strip(), ""
    return line[: match.start()].strip(), match.group().strip().removeprefix("#").strip()


def read_marks(path: Path) -> dict[str, str]:
    """Face id -> reason for every face id in the list (ids holding '#': `<photo_id>#<k>`).

    A face listed by hand with a comment that names no reason reads as "other".
    """
    if not path.is_file():
        return {}
    labels = {label: reason for reason, label in REASONS.items()}
    marks = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        face_id, comment = split(line)
        if "#" in face_id:
            marks[face_id] = labels.get(comment, "other")
    return marks


def set_mark(path: Path, face_id: str, reason: str | None) -> dict[str, str]:
    """Mark `face_id` with `reason` (None: unmark it), rewrite the list atomically, return every mark."""
    if reason is not None and reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r} (one of {', '.join(REASONS)})")
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else [HEADER]
    lines = [line for line in lines if split(line)[0] != face_id]
    if reason is not None:
        lines.append(f"{face_id}  # {REASONS[reason]}")
    fileio.write_text(path, "\n".join(lines) + "\n")
    return read_marks(path)
