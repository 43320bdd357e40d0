"""The diffusion loss head of MAR: a per-token denoiser and its DDPM training and sampling."""

from .denoiser import Denoiser
from .diffusion import GaussianDiffusion
from .head import DiffLoss, DiffLossConfig

__all__ = ["Denoiser", "DiffLoss", "DiffLossConfig", "GaussianDiffusion"]
