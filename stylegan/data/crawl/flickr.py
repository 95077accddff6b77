"""The flickr source: search the REST API for eligible photos and describe each one.

Facts from the Flickr API docs (https://www.flickr.com/services/api/):
`flickr.photos.search` returns at most the first 4,000
results of a query, so the upload-date range is bisected until every window's
`total` is below `window_cap`; results are de-duplicated on photo id; the
original (or largest) size is taken from `url_o` or `flickr.photos.getSizes`.

The API key is sent in the POST body, never in a URL, and is scrubbed from every
error message, so it cannot leak through a log, a traceback or a record.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import time
from collections.abc import Iterator
from typing import Any

import requests

from stylegan import fileio
from stylegan.data.crawl.config import CrawlSettings, FlickrSettings
from stylegan.data.crawl.retry import TRANSIENT_ERRORS, Backoff, GaveUp, RateLimiter, Retryable, check_status
from stylegan.data.records import photo_record
from stylegan.errors import StageError

log = logging.getLogger(__name__)

SEARCH_LIMIT = 4000  # flickr.photos.search docs: "at most the first 4,000 results for any given search query"
RETRYABLE_CODES = {10, 105}  # flickr.photos.search error codes: search API unavailable, service unavailable
OPT_OUT_TAGS = {"no_cv", "nocv"}  # FFHQ README opt-out tag; Flickr's clean form drops the underscore
EXTRAS = "license,owner_name,date_upload,date_taken,o_dims,url_o,original_format,tags,media"

# Flickr licence ids, names and deeds: Flickr API flickr.photos.licenses.getInfo
# (https://www.flickr.com/services/api/flickr.photos.licenses.getInfo.html; ids 9 and 10
# from WordPress/openverse-catalog `providers/provider_api_scripts/flickr.py`). Names follow Flickr's own strings.
FLICKR_LICENSES: dict[int, tuple[str, str | None]] = {
    0: ("All Rights Reserved", None),
    1: ("Attribution-NonCommercial-ShareAlike License", "https://creativecommons.org/licenses/by-nc-sa/2.0/"),
    2: ("Attribution-NonCommercial License", "https://creativecommons.org/licenses/by-nc/2.0/"),
    3: ("Attribution-NonCommercial-NoDerivs License", "https://creativecommons.org/licenses/by-nc-nd/2.0/"),
    4: ("Attribution License", "https://creativecommons.org/licenses/by/2.0/"),
    5: ("Attribution-ShareAlike License", "https://creativecommons.org/licenses/by-sa/2.0/"),
    6: ("Attribution-NoDerivs License", "https://creativecommons.org/licenses/by-nd/2.0/"),
    7: ("No known copyright restrictions", "https://www.flickr.com/commons/usage/"),
    8: ("United States Government Work", "http://www.usa.gov/copyright.shtml"),
    9: ("Public Domain Dedication (CC0)", "https://creativecommons.org/publicdomain/zero/1.0/"),
    10: ("Public Domain Mark", "https://creativecommons.org/publicdomain/mark/1.0/"),
}


def unix_to_iso(seconds: int | str | None) -> str | None:
    """A Flickr unix timestamp as ISO 8601 UTC."""
    if seconds in (None, ""):
        return None
    moment = dt.datetime.fromtimestamp(int(seconds), dt.UTC)
    return moment.isoformat().replace("+00:00", "Z")


class FlickrError(StageError):
    """The API refused a call for a reason retrying cannot fix (bad key, bad query)."""


class FlickrClient:
    """Calls REST methods with rate limiting, retries, and the key kept secret."""

    def __init__(self, settings: FlickrSettings, api_key: str, session: requests.Session | None = None):
        self.settings = settings
        self._key = api_key
        self._session = session or requests.Session()
        self._limiter = RateLimiter(settings.calls_per_hour)
        self._backoff = Backoff(settings.retries, settings.backoff_s)
        self.calls = 0

    def scrub(self, text: str) -> str:
        """`text` with the API key blanked out."""
        return text.replace(self._key, "<api_key>") if self._key else text

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One API method's JSON body; transient failures are retried, the rest raise FlickrError."""
        try:
            return self._backoff.run(lambda: self._attempt(method, params), f"Flickr {method}")
        except GaveUp as err:
            raise FlickrError(self.scrub(str(err))) from None

    def _attempt(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._limiter.wait()
        self.calls += 1
        form = {**params, "method": method, "api_key": self._key, "format": "json", "nojsoncallback": 1}
        try:
            response = self._session.post(self.settings.endpoint, data=form, timeout=self.settings.timeout_s)
        except TRANSIENT_ERRORS as err:
            raise Retryable(self.scrub(f"{type(err).__name__}: {err}")) from None
        except requests.RequestException as err:
            raise FlickrError(self.scrub(f"Flickr {method}: {type(err).__name__}: {err}")) from None
        check_status(response)
        if response.status_code != 200:
            raise FlickrError(f"Flickr {method}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise Retryable("response is not valid JSON") from None
        if not isinstance(body, dict):
            raise Retryable("response is not a JSON object")
        if body.get("stat") != "ok":
            code, message = body.get("code"), self.scrub(str(body.get("message")))
            if code in RETRYABLE_CODES:
                raise Retryable(f"stat fail {code}: {message}")
            raise FlickrError(f"Flickr {method} failed with code {code}: {message}")
        return body


def api_key(settings: FlickrSettings) -> str:
    """The key from the environment variable named in config (never from the config itself)."""
    key = os.environ.get(settings.api_key_env, "").strip()
    if not key:
        raise StageError(
            f"crawl.flickr.api_key_env: environment variable {settings.api_key_env} is not set; "
            "export your Flickr API key there (it is never written to any file)"
        )
    return key


def search_params(settings: CrawlSettings) -> dict[str, Any]:
    """The fixed part of every search: licences, photos only, safety, extras, opt-out tag.

    `tags=-no_cv` excludes the opt-out tag when the user gives no tags, or gives
    them with tag_mode 'all' (where `-no_cv` is one more AND-ed condition). With
    user tags in mode 'any' the exclusion would become an OR, so it is not sent;
    every result's own tags are checked instead (`eligible`), which always happens.
    """
    flickr = settings.flickr
    params: dict[str, Any] = {
        "license": ",".join(str(i) for i in settings.licenses),
        "media": "photos",
        "content_type": 1,
        "safe_search": flickr.safe_search,
        "per_page": flickr.per_page,
        "extras": EXTRAS,
        "sort": "date-posted-asc",
    }
    if flickr.text:
        params["text"] = flickr.text
    if not flickr.tags:
        params["tags"] = "-no_cv"
    else:
        extra = ["-no_cv"] if flickr.tag_mode == "all" else []
        params["tags"] = ",".join(list(flickr.tags) + extra)
        params["tag_mode"] = flickr.tag_mode
    return params


def eligible(photo: dict[str, Any], licenses: tuple[int, ...]) -> str | None:
    """Why a search result must be dropped, or None when it may be crawled."""
    try:
        licence = int(photo.get("license"))
    except (TypeError, ValueError):
        return f"licence {photo.get('license')!r} is not a Flickr licence id"
    if licence not in licenses:
        return f"licence {licence} is not on the allow-list"
    if OPT_OUT_TAGS & set(str(photo.get("tags", "")).lower().split()):
        return "tagged no_cv (opted out)"
    if photo.get("media", "photo") != "photo":
        return f"media is {photo.get('media')}"
    return None


def windows(client: FlickrClient, params: dict[str, Any], lo: int, hi: int) -> Iterator[tuple[int, int, dict]]:
    """Upload-date windows [lo, hi] (inclusive seconds) each holding fewer than window_cap photos.

    Yields each window with its first result page, which the split decision
    needed anyway. A one-second window still over the cap is yielded with a
    warning: only its first 4,000 photos are reachable.
    """
    cap = client.settings.window_cap
    pending = [(lo, hi)]
    while pending:
        start, end = pending.pop()
        page = client.call("flickr.photos.search", **params, min_upload_date=start, max_upload_date=end, page=1)
        total = int(page["photos"]["total"])
        if total >= cap and end > start:
            middle = (start + end) // 2
            pending += [(middle + 1, end), (start, middle)]  # earlier half next
            log.debug("window %d-%d holds %d photos: split", start, end, total)
            continue
        if total >= cap:
            log.warning("upload second %d holds %d photos; only %d are reachable", start, total, SEARCH_LIMIT)
        yield start, end, page


def window_photos(client: FlickrClient, params: dict[str, Any], start: int, end: int, first: dict) -> Iterator[dict]:
    """Every result of one window, page by page (pages past 4,000 results repeat, so stop there)."""
    total = int(first["photos"]["total"])
    pages = math.ceil(min(total, SEARCH_LIMIT) / client.settings.per_page)
    yield from first["photos"]["photo"]
    for number in range(2, pages + 1):
        page = client.call("flickr.photos.search", **params, min_upload_date=start, max_upload_date=end, page=number)
        photos = page["photos"]["photo"]
        if not photos:
            break
        yield from photos


def best_size(client: FlickrClient, photo: dict[str, Any]) -> tuple[str, int | None, int | None]:
    """The original's URL and size from the search extras, else the largest from getSizes."""
    if photo.get("url_o"):
        width = photo.get("width_o") or photo.get("o_width")
        height = photo.get("height_o") or photo.get("o_height")
        return photo["url_o"], _int(width), _int(height)
    sizes = client.call("flickr.photos.getSizes", photo_id=photo["id"])["sizes"]["size"]
    original = [s for s in sizes if s.get("label") == "Original"]
    chosen = original[0] if original else max(sizes, key=lambda s: _int(s["width"]) * _int(s["height"]))
    return chosen["source"], _int(chosen["width"]), _int(chosen["height"])


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def to_record(photo: dict[str, Any], url: str, width: int | None, height: int | None) -> dict[str, Any]:
    """A search result as a catalogue record."""
    licence = int(photo["license"])
    name, deed = FLICKR_LICENSES.get(licence, (None, None))
    return photo_record(
        photo_id=f"flickr:{photo['id']}",
        source="flickr",
        source_id=str(photo["id"]),
        owner_id=photo.get("owner"),
        owner_name=photo.get("ownername"),
        license_id=str(licence),
        license_name=name,
        license_url=deed,
        page_url=f"https://www.flickr.com/photos/{photo.get('owner')}/{photo['id']}",
        title=photo.get("title"),
        date_uploaded=unix_to_iso(photo.get("dateupload")),
        date_taken=photo.get("datetaken") or None,
        width=width,
        height=height,
        source_url=url,
    )


def window_key(entry: dict[str, Any]) -> tuple[int, int]:
    """A listing journal entry's key: its upload-date window."""
    return tuple(entry["window"])


def catalogue(settings: CrawlSettings, journal: fileio.Journal) -> list[dict[str, Any]]:
    """Every eligible photo once. Finished windows are journalled (keyed by `window_key`)
    so a killed run resumes."""
    flickr = settings.flickr
    client = FlickrClient(flickr, api_key(flickr))
    params = search_params(settings)
    hi = flickr.max_upload_date if flickr.max_upload_date is not None else int(time.time())
    found: dict[str, dict[str, Any]] = {}
    dropped = 0
    for start, end, first in windows(client, params, flickr.min_upload_date, hi):
        if journal.done((start, end)) is None:
            records, seen = [], set(found)
            for photo in window_photos(client, params, start, end, first):
                reason = eligible(photo, settings.licenses)
                if reason:
                    dropped += 1
                    log.debug("dropping photo %s: %s", photo.get("id"), reason)
                elif f"flickr:{photo['id']}" not in seen:
                    seen.add(f"flickr:{photo['id']}")
                    records.append(to_record(photo, *best_size(client, photo)))
            journal.record({"window": [start, end], "records": records})
        for record in journal.done((start, end))["records"]:
            found.setdefault(record["photo_id"], record)
        log.info("window %d-%d: %d photos so far, %d API calls", start, end, len(found), client.calls)
        if flickr.max_photos is not None and len(found) >= flickr.max_photos:
            break
    if dropped:
        log.info("dropped %d ineligible results (licence, opt-out tag or media)", dropped)
    records = sorted(found.values(), key=lambda r: r["photo_id"])
    return records[: flickr.max_photos] if flickr.max_photos is not None else records
