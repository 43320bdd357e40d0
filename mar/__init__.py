"""MAR: masked autoregressive image generation over continuous tokens (Li et al. 2024).

The public names: import them from ``mar`` so that user code survives moves inside the package.
"""

from diffloss import DiffLossConfig
from mar.interop.hub import PretrainedMAR, open_checkpoint
from mar.model.backbone import MARBackbone
from mar.model.categorical import CategoricalConfig
from mar.model.config import NAMED_SIZES, MARConfig, named_config
from mar.model.generator import MARGenerator
from mar.sampling.config import SamplingConfig
from mar.sampling.loop import sample_latents
from mar.train.checkpoint import Checkpoint, load_checkpoint

__all__ = [
    "NAMED_SIZES",
    "CategoricalConfig",
    "Checkpoint",
    "DiffLossConfig",
    "MARBackbone",
    "MARConfig",
    "MARGenerator",
    "PretrainedMAR",
    "SamplingConfig",
    "load_checkpoint",
    "named_config",
    "open_checkpoint",
    "sample_latents",
]
