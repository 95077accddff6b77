"""The generator and discriminator, what a trained generator is stored as, and how it draws images.

Training and the metrics both build on this package; it imports neither of them.
"""
