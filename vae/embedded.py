"""The tokenizers shipped with the package: small KL autoencoders (stride 2, 1 latent channel, width 32) trained here.

With them a run needs neither a download nor minutes of tokenizer training; ``train.py --tokenizer new`` trains one
inside the run instead. Each folder's ``MADE_BY.md`` names the command that made it, and its ``metrics.json`` what
that command measured.
- ``glyphs-kl``: trained on the embedded glyph set; the default run's.
- ``general-kl``: trained on a broad mix of drawn images (dead leaves, shapes, textures:
  ``benchmarks/image_sets.py --kind broad``); a run on any other data fine-tunes it on that data (300 steps),
  which beat 800 steps from random weights on data neither had seen.
"""

from pathlib import Path

GLYPH_TOKENIZER = Path(__file__).parent / "weights" / "glyphs-kl"
GLYPH_TOKENIZER_IMAGE_SIZE = 32  # the glyph size it was trained on
GENERAL_TOKENIZER = Path(__file__).parent / "weights" / "general-kl"
GENERAL_SHAPE = (2, 1, 32)  # its stride, latent channels and width: a new tokenizer of this shape starts from it
