"""MAR: masked autoregressive image generation over continuous tokens."""
from .configs import NAMED_SIZES, MARConfig, named_config
from .generator import MARGenerator
from .model import MAR
from .sampling import sample_latents

__all__ = ["MAR", "MARConfig", "MARGenerator", "NAMED_SIZES", "named_config", "sample_latents"]
