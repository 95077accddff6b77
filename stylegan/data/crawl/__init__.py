"""The crawl stage: list eligible photos (catalogue), download them in chunks, report.

`config` holds the typed settings, `flickr`, `folder` and `aligned` the three
sources (each yields catalogue records, in `stylegan.data.records`' format; the
aligned source's images skip detection and alignment) and `catalogue` the choice
between them, `retry` the backoff and rate-limit policy, `download` the
chunk assignment and the resumable chunk downloader, and `report` the merge of
all chunks.
"""
