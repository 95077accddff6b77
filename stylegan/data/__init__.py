"""Dataset stages: demo photos, crawl, align, filter, pack, and the shard reader."""
