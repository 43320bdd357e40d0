"""The generator's config (the backbone's fields and the token head's config) and the registry of named sizes."""

from dataclasses import asdict, dataclass, fields, replace

from diffloss import DiffLossConfig
from mar.model.categorical import CategoricalConfig

HEADS = {"diffusion": DiffLossConfig, "categorical": CategoricalConfig}
# Conventions: this library's, or the official MAR code's (improved-DDPM respacing of the head's chain, the guidance
# scale of its last autoregressive step, the discretised loss at t = 0; mar/interop/official.py).
COMPAT = ("default", "official")
ATTENTIONS = ("bidirectional", "causal")
ORDERS = ("random", "raster")


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
    # Token head: DiffLossConfig (the paper's diffusion loss) or CategoricalConfig (cross-entropy over a discrete
    # tokenizer's codes). Its input sizes (token channels, condition width, codes per token) and the official loss at
    # t = 0 follow from the fields here: they are set from them, whatever the given config says.
    head: DiffLossConfig | CategoricalConfig = DiffLossConfig(width=1024, depth=6)
    # "official" trains the head with the official code's loss at t = 0 and samples as it does, unless told otherwise.
    compat: str = "default"
    # The paper's Table 1 axes: "bidirectional" (MAR's MAE-style backbone) or "causal" (a decoder-only transformer,
    # one token per step with a key/value cache), over a "random" order per image or the "raster" (row-major) order.
    attention: str = "bidirectional"
    order: str = "random"

    def __post_init__(self):
        if self.latent_size % self.patch_size:
            raise ValueError(
                f"latent size {self.latent_size} is not divisible by patch size {self.patch_size}; "
                "choose a patch size that divides the tokenizer's latent grid"
            )
        if not isinstance(self.head, tuple(HEADS.values())):
            raise ValueError(f"head {self.head!r} is not a head config; use DiffLossConfig or CategoricalConfig")
        if self.compat not in COMPAT:
            raise ValueError(f"unknown compat {self.compat!r}; choose one of {', '.join(COMPAT)}")
        if self.head_kind == "categorical" and self.head.codebook_size < 1:
            raise ValueError("the categorical head needs codebook_size, the discrete tokenizer's number of codes")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {self.attention!r}; choose one of {', '.join(ATTENTIONS)}")
        if self.order not in ORDERS:
            raise ValueError(f"unknown order {self.order!r}; choose one of {', '.join(ORDERS)}")
        if self.order == "raster" and self.attention == "bidirectional":
            raise ValueError(
                "raster order is for the causal model (attention causal); the bidirectional model draws "
                "in a random order"
            )
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}")
        if self.head_kind == "categorical":
            inputs = {"cond_channels": self.width, "codes_per_token": self.patch_size**2}
        else:
            inputs = {
                "token_channels": self.token_dim,
                "cond_channels": self.width,
                "discretized_decoder": self.compat == "official",
            }
        object.__setattr__(self, "head", replace(self.head, **inputs))  # frozen: set once, here

    @property
    def head_kind(self) -> str:
        """ "diffusion" or "categorical"."""
        return "categorical" if isinstance(self.head, CategoricalConfig) else "diffusion"

    @property
    def grid_size(self) -> int:
        return self.latent_size // self.patch_size

    @property
    def seq_len(self) -> int:
        return self.grid_size**2

    @property
    def token_dim(self) -> int:
        return self.latent_channels * self.patch_size**2

    def with_head(self, kind: str | None = None, **changes) -> "MARConfig":
        """This config with the head's fields changed; ``kind`` switches the head, keeping its width.

        ``named_config("mar-tiny").with_head(depth=2)``, ``...with_head("categorical", codebook_size=512)``.
        """
        head = self.head
        if kind is not None and kind != self.head_kind:
            if kind not in HEADS:
                raise ValueError(f"unknown head {kind!r}; choose one of {', '.join(HEADS)}")
            head = HEADS[kind](width=head.width)
        return replace(self, head=replace(head, **changes))

    def to_dict(self) -> dict:
        """JSON-ready: the head as a dict with its ``kind``."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return values | {"head": {"kind": self.head_kind, **asdict(self.head)}}

    @classmethod
    def from_dict(cls, values: dict) -> "MARConfig":
        """The config of ``to_dict``, or of checkpoints written before the head had its own config (flat fields)."""
        values = dict(values)
        head = values.pop("head", "diffusion")
        if isinstance(head, str):  # the flat layout: head kind and head fields beside the backbone's
            head = {"kind": head} | {new: values.pop(old) for old, new in FLAT_HEAD_FIELDS.items() if old in values}
            if head["kind"] == "diffusion":
                head.pop("codebook_size", None)
            else:
                for name in ("depth", "diffusion_batch_mul", "num_sampling_steps", "learn_sigma"):
                    head.pop(name, None)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config has fields this version does not know: {', '.join(unknown)}")
        head = dict(head)
        kind = head.pop("kind", "diffusion")
        if kind not in HEADS:
            raise ValueError(f"config names an unknown head {kind!r}; this version knows {', '.join(HEADS)}")
        head_fields = {f.name for f in fields(HEADS[kind])}
        if unknown := sorted(set(head) - head_fields):
            raise ValueError(f"config's {kind} head has fields this version does not know: {', '.join(unknown)}")
        return cls(**values, head=HEADS[kind](**head))

    def differences(self, other: "MARConfig") -> list[str]:
        """'field: mine != theirs' for every field that differs; the head's fields as 'head.field'."""

        def flat(config: "MARConfig") -> dict:
            values = config.to_dict()
            return values | {f"head.{k}": v for k, v in values.pop("head").items()}

        mine, theirs = flat(self), flat(other)
        return [f"{k}: {mine[k]!r} != {theirs.get(k)!r}" for k in mine if mine[k] != theirs.get(k)]


# The flat layout's head fields (checkpoints before the head had its own config) and their names in the head's config.
FLAT_HEAD_FIELDS = {
    "head_width": "width",
    "head_depth": "depth",
    "diffusion_batch_mul": "diffusion_batch_mul",
    "num_sampling_steps": "num_sampling_steps",
    "learn_sigma": "learn_sigma",
    "codebook_size": "codebook_size",
}


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
        head=DiffLossConfig(width=128, depth=3),
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
        head=DiffLossConfig(width=256, depth=3),
    ),
    "mar-base": MARConfig(
        width=768, encoder_depth=12, decoder_depth=12, num_heads=12, head=DiffLossConfig(width=1024, depth=6)
    ),
    "mar-large": MARConfig(
        width=1024, encoder_depth=16, decoder_depth=16, num_heads=16, head=DiffLossConfig(width=1280, depth=8)
    ),
    "mar-huge": MARConfig(
        width=1280, encoder_depth=20, decoder_depth=20, num_heads=16, head=DiffLossConfig(width=1536, depth=12)
    ),
}


def named_config(name: str, **overrides) -> MARConfig:
    if name not in NAMED_SIZES:
        raise ValueError(f"unknown model size {name!r}; choose one of {', '.join(NAMED_SIZES)}")
    return replace(NAMED_SIZES[name], **overrides)
