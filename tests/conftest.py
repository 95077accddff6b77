"""Fixtures shared by several test modules (helpers without state live in faces.py and training.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faces import packed_lzf_manifest


@pytest.fixture(scope="session")
def small_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small packed dataset the training and report tests read (never write), packed once per run."""
    return packed_lzf_manifest(tmp_path_factory.mktemp("small_dataset"), seed=4)
