"""The tokenizer shipped with the package: a KL autoencoder trained here on the embedded glyph set.

With it the default run needs neither a download nor minutes of tokenizer training; ``train.py --tokenizer new``
trains one inside the run instead. The folder's ``MADE_BY.md`` names the command that made it (``--seed 0``, fp32),
and its ``metrics.json`` what that command measured.
"""

from pathlib import Path

GLYPH_TOKENIZER = Path(__file__).parent / "weights" / "glyphs-kl"  # stride 2, 1 latent channel, width 32
GLYPH_TOKENIZER_IMAGE_SIZE = 32  # the glyph size it was trained on
