"""StyleGAN and the FFHQ-style dataset pipeline, as a library.

Nothing here knows about Snakemake: the workflow calls the `stylegan` console
command (``stylegan/cli.py``), whose sub-commands are thin calls into these modules.
"""

__version__ = "0.1.0"
