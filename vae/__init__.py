"""Tokenizers: images <-> latent grids."""
from .kl import KLTokenizer, small_autoencoder
from .train import psnr, reconstruction_psnr, train_kl_tokenizer

__all__ = ["KLTokenizer", "psnr", "reconstruction_psnr", "small_autoencoder", "train_kl_tokenizer"]
