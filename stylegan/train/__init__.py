"""Training: the loss, the data feed, checkpoints and the loop that grows the networks."""
