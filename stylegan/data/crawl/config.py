"""Typed settings of the `crawl` config section."""

from __future__ import annotations

import dataclasses
from typing import Literal

from stylegan.settings import setting

# FFHQ's licences (NVlabs/ffhq-dataset README) as Flickr ids: `license=2,4,8,9,10`.
FFHQ_LICENSES = (2, 4, 8, 9, 10)


@dataclasses.dataclass(frozen=True)
class FlickrSettings:
    """How to query Flickr's REST API (https://www.flickr.com/services/api/flickr.photos.search.html)."""

    api_key_env: str = setting(
        "FLICKR_API_KEY",
        "environment variable holding the API key (never put the key in config)",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
    )
    endpoint: str = setting("https://api.flickr.com/services/rest/", "REST endpoint", pattern=r"^https?://")
    text: str | None = setting(None, "free-text search query")
    tags: tuple[str, ...] = setting(
        (),
        "tags to search for; the no_cv opt-out tag is excluded in the query "
        "(tag_mode all or no tags) and always on every result",
    )
    tag_mode: Literal["any", "all"] = setting("any", "whether a photo needs any or all of `tags`")
    min_upload_date: int = setting(1104537600, "earliest upload, unix seconds (2005-01-01)", ge=0)
    max_upload_date: int | None = setting(None, "latest upload, unix seconds; null: now", ge=0)
    safe_search: Literal[1, 2, 3] = setting(1, "1 safe, 2 moderate, 3 restricted")
    per_page: int = setting(500, "results per page (Flickr's maximum is 500)", ge=1, le=500)
    window_cap: int = setting(
        3000,
        "bisect the upload-date window until its total is below this; Flickr returns at most 4,000 per query",
        ge=1,
        le=4000,
    )
    max_photos: int | None = setting(None, "stop listing after this many photos; null: all", ge=1)
    calls_per_hour: float = setting(
        3000.0,
        "API calls per hour (Flickr Developer Guide: under 3,600 per key; "
        "a faster mirror or test server may allow more)",
        gt=0,
    )
    retries: int = setting(
        6, "extra attempts after 429, 5xx, timeouts, broken connections, invalid JSON, code 105", ge=0
    )
    backoff_s: float = setting(
        1.0, "first retry delay, doubled each attempt, jittered; Retry-After wins when longer", ge=0
    )
    timeout_s: float = setting(30.0, "seconds to wait for the server per call", gt=0)


@dataclasses.dataclass(frozen=True)
class FolderSettings:
    """A user's own directory of photos with an optional licence sidecar."""

    path: str = setting("resources/demo/photos", "directory of the user's photos")
    sidecar: str | None = setting(
        None,
        "JSON file mapping each photo's relative path to its licence and author; "
        "photos without an entry get license_id 'unknown'",
    )


@dataclasses.dataclass(frozen=True)
class AlignedSettings:
    """A folder of already-aligned square faces (FFHQ's published images), packed as they are."""

    path: str | None = setting(
        None,
        "directory of aligned images, all square and of one power-of-two size "
        "(FFHQ's images1024x1024/); they are used in place, not copied",
    )
    metadata: str | None = setting(
        None,
        "FFHQ's ffhq-dataset-v2.json: each image's licence, author and Flickr page "
        "by file name; null, or an image it lacks: license_id 'unknown'",
    )


@dataclasses.dataclass(frozen=True)
class DownloadSettings:
    """How each chunk job fetches and verifies files."""

    retries: int = setting(3, "extra attempts per photo before it is quarantined", ge=0)
    backoff_s: float = setting(1.0, "first retry delay, doubled each attempt, jittered", ge=0)
    timeout_s: float = setting(60.0, "seconds to wait for the server between bytes", gt=0)


@dataclasses.dataclass(frozen=True)
class CrawlSettings:
    """The `crawl` config section."""

    source: Literal["flickr", "folder", "aligned"] = setting(
        "folder", "where photos come from; `aligned`: faces aligned already, no detection or alignment"
    )
    chunks: int = setting(2, "download jobs (one SLURM job each)", ge=1, le=999)
    workers: int = setting(8, "parallel downloads within one job", ge=1)
    licenses: tuple[int, ...] = setting(
        FFHQ_LICENSES,
        "Flickr licence ids allowed (default FFHQ's: BY-NC, BY, US Gov, CC0, PDM); checked in the "
        "search, on every result and again before each download. Not applied to the folder and aligned "
        "sources.",
        ge=0,
        length=(1, None),
        unique=True,
    )
    flickr: FlickrSettings = setting(factory=FlickrSettings, doc="the Flickr REST API source")
    folder: FolderSettings = setting(factory=FolderSettings, doc="a folder of the user's photos")
    aligned: AlignedSettings = setting(factory=AlignedSettings, doc="a folder of aligned faces, e.g. FFHQ's own")
    download: DownloadSettings = setting(factory=DownloadSettings, doc="how each chunk job fetches and verifies photos")
