"""What every crawl source and the downloader share: Flickr's licence table, a photo's chunk, timestamps.

The photo record itself is `stylegan.data.records.photo_record`, one format for
both sources, so the downloader, the report and align never care where a photo
came from.
"""

from __future__ import annotations

import datetime as dt
import hashlib

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


def chunk_of(photo_id: str, chunks: int) -> int:
    """The chunk a photo belongs to: a hash that is the same in every process and run.

    The 8-byte BLAKE2b digest of the UTF-8 photo id, read as a big-endian integer,
    modulo `chunks`. Python's `hash()` is salted per process, so a digest is used instead.
    """
    digest = hashlib.blake2b(photo_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % chunks


def utc_now() -> str:
    """The current time as ISO 8601 UTC, second precision (the records' `crawled_at`)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def unix_to_iso(seconds: int | str | None) -> str | None:
    """A Flickr unix timestamp as ISO 8601 UTC."""
    if seconds in (None, ""):
        return None
    moment = dt.datetime.fromtimestamp(int(seconds), dt.timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")
