"""The catalogue: every eligible photo of the configured source, one record each."""

from __future__ import annotations

import logging
from pathlib import Path

from stylegan import fileio
from stylegan.data.crawl import aligned, flickr, folder
from stylegan.data.crawl.config import CrawlSettings

log = logging.getLogger(__name__)


def build(settings: CrawlSettings, out: Path) -> int:
    """Write the catalogue to `out` atomically; the number of photos.

    A flickr crawl journals finished date windows beside `out` (a hidden file,
    not a rule output) so a killed listing resumes; the journal goes once `out` exists.
    """
    if settings.source == "flickr":
        with fileio.Journal(Path(out).parent / f".{Path(out).name}.journal", key=flickr.window_key) as journal:
            records = flickr.catalogue(settings, journal)
            fileio.write_jsonl(out, records)
            journal.finish()
    else:
        records = (
            aligned.catalogue(settings.aligned)
            if settings.source == aligned.SOURCE
            else folder.catalogue(settings.folder)
        )
        fileio.write_jsonl(out, records)
    log.info("catalogue: %d photos from the %s source", len(records), settings.source)
    return len(records)
