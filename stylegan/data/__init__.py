"""Dataset stages: demo photos, crawl, align, filter and its review page, pack, and the shard reader."""
