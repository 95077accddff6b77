"""The paper's evaluation: FID and KID, the figures, and the shared pieces every metric uses."""
