"""SamplingConfig: every sampling knob with its default, shared by the library, the command line, train.py's grids,
the demo and the Hub model (docs/sampling.md)."""

from dataclasses import dataclass, fields, replace

from mar.model.config import COMPAT

HEAD_SAMPLERS = ("ddpm", "ddim", "dpm++")
CFG_SCHEDULES = ("linear", "constant")
REUSE = ("first-step", "halves")  # exact savings (mar/sampling/guidance.py); "all" or "none" name every one or none

PRESETS = {  # by name: the fields a preset sets (docs/sampling.md); "exact" is the defaults, the paper's DDPM-100
    "exact": {},
    # K = 8, ddpm with 10 head steps, guidance's unconditional half every 4 steps, the token cache with its buffer
    # kept, refreshed as the visible tokens double (docs/sampling.md#speed-settings, docs/benchmarks.md)
    "fast": {
        "num_iter": 8,
        "diffusion_steps": 10,
        "cfg_refresh": 4,
        "token_cache": 16,
        "cache_growth": 2.0,
        "cache_buffer": True,
    },
}


@dataclass(frozen=True)
class SamplingConfig:
    num_iter: int = 16  # autoregressive steps K
    temperature: float = (
        0.3  # ddpm: noise scale per step; ddim / dpm++: starting noise; categorical: softmax temperature
    )
    cfg: float = 2.0  # classifier-free guidance scale; 1 = none
    cfg_schedule: str = "constant"  # "linear" rises from 1 to cfg with the fraction of tokens drawn
    head_sampler: str = "ddpm"  # the diffusion head's solver: ddpm (the paper's), ddim or dpm++
    diffusion_steps: int | None = 100  # head steps per token (at the first step when annealed); None: the model's
    diffusion_steps_last: int | None = None  # anneal the head's steps linearly down to this at the last step
    cfg_refresh: int = 1  # run guidance's unconditional half every N steps only (approximate; 1 = exact)
    token_cache: int = 0  # refresh the backbone's kept keys and values every N steps (approximate); 0 = no cache
    cache_buffer: bool = False  # with the token cache, keep the buffer's rows between refreshes too (approximate)
    cache_growth: float = 0.0  # with the token cache, also refresh when the visible tokens grew G times; 0 = off
    guided_head: bool = False  # the checkpoint's guided head draws, one evaluation per head step (approximate)
    reuse: str = "all"  # exact savings, comma-separated from REUSE, or "all" / "none"; equal samples either way
    compat: str | None = None  # "official": sample as the official MAR code; None: the checkpoint's own

    def __post_init__(self):
        if self.num_iter < 1:
            raise ValueError(f"num_iter {self.num_iter} must be at least 1")
        if self.head_sampler not in HEAD_SAMPLERS:
            raise ValueError(f"unknown head sampler {self.head_sampler!r}; choose one of {', '.join(HEAD_SAMPLERS)}")
        if self.cfg_schedule not in CFG_SCHEDULES:
            raise ValueError(f"unknown cfg schedule {self.cfg_schedule!r}; choose one of {', '.join(CFG_SCHEDULES)}")
        if self.compat is not None and self.compat not in COMPAT:
            raise ValueError(f"unknown compat {self.compat!r}; choose one of {', '.join(COMPAT)}")
        if self.cfg_refresh < 1:
            raise ValueError(
                f"cfg_refresh {self.cfg_refresh} must be at least 1 (1 runs the unconditional half at every step)"
            )

        if self.token_cache < 0:
            raise ValueError(f"token_cache {self.token_cache} must be 0 (off) or a refresh interval of at least 1")
        if self.cache_growth != 0 and not self.cache_growth >= 1:
            raise ValueError(
                f"cache_growth {self.cache_growth:g} must be 0 (off) or a factor of at least 1 (1 refreshes at every "
                "step that sees a new token)"
            )
        self.reused()

    def with_preset(self, name: str) -> "SamplingConfig":
        """This config with the preset's fields set where they are still at their defaults."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        default = SamplingConfig()
        return replace(self, **{k: v for k, v in PRESETS[name].items() if getattr(self, k) == getattr(default, k)})

    def reused(self) -> frozenset[str]:
        """The exact savings ``reuse`` names."""
        if self.reuse in ("all", "none"):
            return frozenset(REUSE if self.reuse == "all" else ())
        names = frozenset(name.strip() for name in self.reuse.split(","))
        unknown = sorted(names - set(REUSE))
        if unknown:
            raise ValueError(f"unknown reuse {unknown[0]!r}; name all, none, or some of {', '.join(REUSE)}")
        return names

    @classmethod
    def from_namespace(cls, args) -> "SamplingConfig":
        """The config from parsed command-line options that carry its field names (``add_sampling_arguments``)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})
