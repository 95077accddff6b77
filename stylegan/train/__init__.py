"""The StyleGAN networks, loss, schedule and training loop."""
