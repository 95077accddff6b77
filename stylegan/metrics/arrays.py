"""The file of a shard's per-sample arrays (PPL's distances, LS's rows) with the record of what made them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from stylegan import fileio
from stylegan.errors import StageError


def save_arrays(out: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any], fmt: str) -> None:
    """A shard's per-sample arrays and its record (with `fmt` as its format), atomically as .npz."""
    with fileio.atomic_path(out) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays, meta=json.dumps({**meta, "format": fmt}, sort_keys=True))


def load_arrays(path: Path, fmt: str, keys: tuple[str, ...], what: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """What `save_arrays` wrote; another file or format is a StageError naming the file."""
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != fmt:
                raise ValueError(f"format {meta.get('format')!r}")
            return {k: z[k] for k in keys}, meta
    except (OSError, ValueError, KeyError) as err:
        raise StageError(f"{path}: not a {what} shard of this version ({err}); rerun its job") from None
