"""DiscreteTokenizer: diffusers' convolutional Encoder and Decoder around a VQ or FSQ quantiser.

Images (b, 3, s, s) in [-1, 1] become code indices (b, s / stride, s / stride) and back.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .fsq import FSQ, FSQConfig
from .levels import level_channels
from .pixel_loss import pixel_loss
from .vq import Quantized, VectorQuantizer, VQConfig

WEIGHTS_FILE = "tokenizer.safetensors"


@dataclass(frozen=True)
class DiscreteConfig:
    kind: str = "vq"  # "vq" or "fsq"
    stride: int = 4
    width: int = 64
    vq: VQConfig = field(default_factory=VQConfig)
    fsq: FSQConfig = field(default_factory=FSQConfig)

    def __post_init__(self):
        if self.kind not in ("vq", "fsq"):
            raise ValueError(f"discrete tokenizer kind {self.kind!r} is not one of 'vq', 'fsq'")
        level_channels(self.stride, self.width)

    @property
    def code_dim(self) -> int:
        return self.vq.dim if self.kind == "vq" else len(self.fsq.levels)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "DiscreteConfig":
        fsq = FSQConfig(levels=tuple(values["fsq"]["levels"]))
        return cls(**{**values, "vq": VQConfig(**values["vq"]), "fsq": fsq})


class DiscreteTokenizer(nn.Module):
    discrete = True

    def __init__(self, config: DiscreteConfig, pixel_loss: str = "l1"):
        super().__init__()
        self.config = config
        self.pixel_loss = (
            pixel_loss  # "l1" or "mse", the pixel term of ``training_loss``; a training setting, not saved
        )
        from diffusers.models.autoencoders.vae import Decoder, Encoder  # see docs/architecture.md#imports

        channels = level_channels(config.stride, config.width)
        shape = dict(block_out_channels=channels, layers_per_block=1, norm_num_groups=8)
        self.encoder = Encoder(3, config.code_dim, ("DownEncoderBlock2D",) * len(channels), double_z=False, **shape)
        self.decoder = Decoder(config.code_dim, 3, ("UpDecoderBlock2D",) * len(channels), **shape)
        self.quantizer = VectorQuantizer(config.vq) if config.kind == "vq" else FSQ(config.fsq)

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def stride(self) -> int:
        return self.config.stride

    @property
    def channels(self) -> int:
        """Dimension of a code vector."""
        return self.config.code_dim

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def quantize(self, images: torch.Tensor, generator: torch.Generator | None = None) -> Quantized:
        return self.quantizer(self.encoder(images), generator)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(b, 3, s, s) -> code indices (b, h, w)."""
        return self.quantize(images).indices

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors of ``indices``: (b, h, w) -> (b, d, h, w)."""
        return self.quantizer.lookup(indices)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(b, d, h, w) code vectors -> images (b, 3, s, s); values between codes decode too."""
        return self.decoder(codes).clamp(-1, 1)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decode_codes(self.codes(indices))

    # The generator's view: code vectors scaled to unit spread, as a KL tokenizer scales its latents.
    @property
    def latent_scale(self) -> float:
        """1 / std of the codebook's entries, computed from the weights so it needs no state of its own."""
        return 1.0 / self.codebook().std().item()

    def codebook(self) -> torch.Tensor:
        """Every code vector, unscaled: (k, d)."""
        every = torch.arange(self.codebook_size, device=next(self.parameters()).device)
        return self.codes(every.view(1, -1, 1))[0, :, :, 0].T

    def latent_codebook(self) -> torch.Tensor:
        """Every code vector as the generator sees it: (k, d)."""
        return self.codebook() * self.latent_scale

    def latents(self, indices: torch.Tensor) -> torch.Tensor:
        """Code indices (b, h, w) -> scaled code vectors (b, d, h, w): the generator's tokens."""
        return self.codes(indices) * self.latent_scale

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled code vectors, or values between them from a diffusion head, (b, d, h, w) -> images."""
        return self.decode_codes(latents / self.latent_scale)

    def training_loss(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict]:
        """The pixel loss of the reconstruction plus the quantiser's loss."""
        quantized = self.quantize(images, generator)
        pixels = pixel_loss(self.decoder(quantized.codes), images, self.pixel_loss)
        return pixels + quantized.loss, {self.pixel_loss: pixels.item(), "q": quantized.loss.item()}

    def identity(self) -> dict:
        return {"kind": self.kind, "config": self.config.to_dict()}

    @classmethod
    def from_identity(cls, identity: dict) -> "DiscreteTokenizer":
        return cls(DiscreteConfig.from_dict(identity["config"]))

    def save(self, directory: str | Path) -> None:
        """``tokenizer.json`` (the identity) and ``tokenizer.safetensors`` (weights and codebook statistics)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, directory / WEIGHTS_FILE)
        (directory / "tokenizer.json").write_text(json.dumps(self.identity(), indent=2))

    @classmethod
    def load(cls, directory: str | Path, identity: dict) -> "DiscreteTokenizer":
        tokenizer = cls.from_identity(identity)
        tokenizer.load_state_dict(load_file(Path(directory) / WEIGHTS_FILE))
        return tokenizer
