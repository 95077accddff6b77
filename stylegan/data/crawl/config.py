"""Typed settings of the `crawl` config section (see workflow/schemas/config.schema.yaml)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from stylegan.settings import SettingsError

# FFHQ's licences (NVlabs/ffhq-dataset README) as Flickr ids: `license=2,4,8,9,10`.
FFHQ_LICENSES = (2, 4, 8, 9, 10)


@dataclasses.dataclass(frozen=True)
class FlickrSettings:
    """How to query Flickr's REST API (https://www.flickr.com/services/api/flickr.photos.search.html)."""

    api_key_env: str = "FLICKR_API_KEY"  # the key is read from this env var, never from config
    endpoint: str = "https://api.flickr.com/services/rest/"
    text: str | None = None
    tags: tuple[str, ...] = ()
    tag_mode: Literal["any", "all"] = "any"
    min_upload_date: int = 1104537600  # unix seconds (2005-01-01)
    max_upload_date: int | None = None  # null: now
    safe_search: Literal[1, 2, 3] = 1
    per_page: int = 500  # flickr.photos.search docs: max 500
    window_cap: int = 3000  # flickr.photos.search docs: at most 4,000 results; stay below
    max_photos: int | None = None
    calls_per_hour: float = 3000.0  # Flickr Developer Guide (API): stay under 3,600 per key
    retries: int = 6
    backoff_s: float = 1.0
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        """Limits the API imposes, checked even when the library is called without the schema."""
        if not 1 <= self.per_page <= 500:
            raise SettingsError(f"crawl.flickr.per_page: got {self.per_page}, expected 1..500 (Flickr's maximum)")
        if not 1 <= self.window_cap <= 4000:
            raise SettingsError(
                f"crawl.flickr.window_cap: got {self.window_cap}, expected 1..4000 (Flickr returns at most 4,000)"
            )
        if self.calls_per_hour <= 0:
            raise SettingsError(f"crawl.flickr.calls_per_hour: got {self.calls_per_hour}, expected > 0")


@dataclasses.dataclass(frozen=True)
class FolderSettings:
    """A user's own directory of photos with an optional licence sidecar."""

    path: str = "resources/demo/photos"
    sidecar: str | None = None


@dataclasses.dataclass(frozen=True)
class DownloadSettings:
    """How each chunk job fetches and verifies files."""

    retries: int = 3
    backoff_s: float = 1.0
    timeout_s: float = 60.0


@dataclasses.dataclass(frozen=True)
class CrawlSettings:
    """The `crawl` config section."""

    source: Literal["flickr", "folder"] = "folder"
    chunks: int = 2
    workers: int = 8
    licenses: tuple[int, ...] = FFHQ_LICENSES  # Flickr licence ids allowed (flickr source only)
    flickr: FlickrSettings = FlickrSettings()
    folder: FolderSettings = FolderSettings()
    download: DownloadSettings = DownloadSettings()
