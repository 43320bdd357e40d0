"""Tokenizers: images <-> latent grids (KL) or code indices (VQ, FSQ), one interface for all three.

Every tokenizer has ``kind``, ``stride``, ``channels``, ``discrete``, ``codebook_size`` (None when continuous),
``encode(images)``, ``decode(...)``, ``training_loss(images, generator)``, ``identity()`` and ``save(folder)``.
"""

from .discrete import DiscreteConfig, DiscreteTokenizer
from .fsq import FSQ, RECOMMENDED_LEVELS, FSQConfig
from .kl import KLTokenizer, small_autoencoder
from .loading import Tokenizer, TokenizerNotFound, fingerprint, load_tokenizer, tokenizer_from_identity
from .pixel_loss import PIXEL_LOSSES, pixel_loss
from .train import code_statistics, evaluate_tokenizer, psnr, reconstruction_psnr, train_and_measure, train_tokenizer
from .vq import VectorQuantizer, VQConfig, nearest_code

__all__ = [
    "DiscreteConfig",
    "DiscreteTokenizer",
    "FSQ",
    "FSQConfig",
    "KLTokenizer",
    "PIXEL_LOSSES",
    "RECOMMENDED_LEVELS",
    "Tokenizer",
    "TokenizerNotFound",
    "VQConfig",
    "VectorQuantizer",
    "code_statistics",
    "evaluate_tokenizer",
    "fingerprint",
    "load_tokenizer",
    "nearest_code",
    "pixel_loss",
    "psnr",
    "reconstruction_psnr",
    "small_autoencoder",
    "tokenizer_from_identity",
    "train_and_measure",
    "train_tokenizer",
]
