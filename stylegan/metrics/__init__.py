"""The paper's evaluation: FID and KID, perceptual path length, linear separability and the figures.

What several metrics share has a module of its own: `inception` (the detector),
`stats` (running feature statistics), `reals` (the cached real statistics), `shards`
(sample ranges), `arrays` (a shard's per-sample file), `images` (box downsampling)
and `result` (the result file).
"""
