"""The generator's config and the registry of named sizes."""

from dataclasses import dataclass, fields, replace

from diffloss import DiffLossConfig
from mar.model.categorical import CategoricalConfig

HEADS = ("diffusion", "categorical")
# Conventions: this library's, or the official MAR code's (improved-DDPM respacing of the head's chain, the guidance
# scale of its last autoregressive step, the discretised loss at t = 0; mar/interop/official.py).
COMPAT = ("default", "official")


@dataclass(frozen=True)
class MARConfig:
    # Backbone: the encoder and decoder share one width, as in the paper's models.
    width: int = 768
    encoder_depth: int = 12
    decoder_depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    attn_dropout: float = 0.1
    proj_dropout: float = 0.1
    buffer_size: int = 64
    label_drop_prob: float = 0.1
    # Mask ratio law for training: normal(mean 1.0, std) truncated to [mask_ratio_min, 1.0].
    mask_ratio_min: float = 0.7
    mask_ratio_std: float = 0.25
    # Data: classes and the tokenizer's latent grid (defaults: ImageNet 256 through a 16-channel, stride-16 KL).
    num_classes: int = 1000
    latent_channels: int = 16
    latent_size: int = 16
    patch_size: int = 1
    # Token head: "diffusion" (DiffLoss) or "categorical" (cross-entropy over a tokenizer's codebook_size codes).
    head: str = "diffusion"
    codebook_size: int = 0
    head_width: int = 1024
    head_depth: int = 6
    diffusion_batch_mul: int = 4
    num_sampling_steps: int = 100
    learn_sigma: bool = True
    # "official" trains the head with the official code's loss at t = 0 and samples as it does, unless told otherwise.
    compat: str = "default"

    def __post_init__(self):
        if self.latent_size % self.patch_size:
            raise ValueError(
                f"latent size {self.latent_size} is not divisible by patch size {self.patch_size}; "
                "choose a patch size that divides the tokenizer's latent grid"
            )
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; choose one of {', '.join(HEADS)}")
        if self.compat not in COMPAT:
            raise ValueError(f"unknown compat {self.compat!r}; choose one of {', '.join(COMPAT)}")
        if self.head == "categorical" and self.codebook_size < 1:
            raise ValueError("the categorical head needs codebook_size, the discrete tokenizer's number of codes")
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}")

    @property
    def grid_size(self) -> int:
        return self.latent_size // self.patch_size

    @property
    def seq_len(self) -> int:
        return self.grid_size**2

    @property
    def token_dim(self) -> int:
        return self.latent_channels * self.patch_size**2

    def head_config(self) -> DiffLossConfig | CategoricalConfig:
        if self.head == "categorical":
            return CategoricalConfig(
                cond_channels=self.width, codes_per_token=self.patch_size**2, width=self.head_width
            )
        return DiffLossConfig(
            token_channels=self.token_dim,
            cond_channels=self.width,
            width=self.head_width,
            depth=self.head_depth,
            num_sampling_steps=self.num_sampling_steps,
            diffusion_batch_mul=self.diffusion_batch_mul,
            learn_sigma=self.learn_sigma,
            discretized_decoder=self.compat == "official",
        )

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> "MARConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config has fields this version does not know: {', '.join(unknown)}")
        return cls(**values)

    def differences(self, other: "MARConfig") -> list[str]:
        """'field: mine != theirs' for every field that differs."""
        return [
            f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


# Widths and depths of the paper's models (Li et al. 2024, Table 4 and the official configs). mar-tiny is ours,
# sized to train on a 2-core CPU in minutes; its 4 buffer tokens keep the paper's 1:4 ratio of buffer to tokens
# at the 16 tokens of the embedded default. mar-micro is mar-tiny at half the width, the 15-minute default on
# a CPU; it trains on mask ratios over all of [0, 1] (std 0.5), where sampling its 16 tokens sees them: at
# [0.7, 1] no training step showed more than 4 of the 16 known, while sampling's last 11 steps show 5 to 15.
NAMED_SIZES: dict[str, MARConfig] = {
    "mar-micro": MARConfig(
        width=128,
        encoder_depth=3,
        decoder_depth=3,
        num_heads=4,
        attn_dropout=0.0,
        proj_dropout=0.0,
        buffer_size=4,
        head_width=128,
        head_depth=3,
        mask_ratio_min=0.0,
        mask_ratio_std=0.5,
    ),
    "mar-tiny": MARConfig(
        width=256,
        encoder_depth=3,
        decoder_depth=3,
        num_heads=4,
        attn_dropout=0.0,
        proj_dropout=0.0,
        buffer_size=4,
        head_width=256,
        head_depth=3,
    ),
    "mar-base": MARConfig(width=768, encoder_depth=12, decoder_depth=12, num_heads=12, head_width=1024, head_depth=6),
    "mar-large": MARConfig(width=1024, encoder_depth=16, decoder_depth=16, num_heads=16, head_width=1280, head_depth=8),
    "mar-huge": MARConfig(width=1280, encoder_depth=20, decoder_depth=20, num_heads=16, head_width=1536, head_depth=12),
}


def named_config(name: str, **overrides) -> MARConfig:
    if name not in NAMED_SIZES:
        raise ValueError(f"unknown model size {name!r}; choose one of {', '.join(NAMED_SIZES)}")
    return replace(NAMED_SIZES[name], **overrides)
