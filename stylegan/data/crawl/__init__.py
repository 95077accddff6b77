"""The crawl stage: list eligible photos (catalogue), download them in chunks, report.

`config` holds the typed settings, `records` the shared photo-record format and
chunk assignment, `flickr` and `folder` the two sources (each yields catalogue
records) and `catalogue` the choice between them, `retry` the backoff and
rate-limit policy, `download` the resumable chunk downloader and `report` the
merge of all chunks.
"""
