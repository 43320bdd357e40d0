"""Training recipes per named size: the paper's for mar-base/large/huge, 15-minute CPU ones for mar-tiny and mar-micro.

train.py fills every optimisation option the user leaves out from the recipe of ``--model``, and picks the named
size itself for ``--model auto``. The CPU recipes count their length in optimizer steps, so a run takes the same
time on a folder of 1,000 images as on one of 50,000; the paper's counts epochs of ImageNet.
"""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Recipe:
    blr: float  # base learning rate per 256 images: lr = blr x global batch / 256
    batch_per_process: int
    lr_schedule: str
    ema_decay: float
    steps: int | None = None  # the run's length: optimizer steps, or
    epochs: int | None = None  # passes over the data
    warmup_steps: int | None = None  # linear warmup: steps, or
    warmup_epochs: float | None = None  # passes over the data
    weight_decay: float = 0.02
    grad_clip: float = 3.0

    def schedule(self, steps_per_epoch: int) -> tuple[int, int]:
        """(optimizer steps, warmup steps) of this recipe on data of ``steps_per_epoch`` steps per pass."""
        steps = self.steps if self.steps is not None else self.epochs * steps_per_epoch
        warmup = self.warmup_steps if self.warmup_steps is not None else round(self.warmup_epochs * steps_per_epoch)
        return steps, warmup


# MAR (Li et al., 2024): AdamW (0.9, 0.95), blr 1e-4 at batch 64 per GPU (2048 on 32 GPUs), 100 warmup epochs,
# then constant, 400 epochs, weight decay 0.02, clip 3.0, EMA 0.9999.
PAPER = Recipe(blr=1e-4, batch_per_process=64, epochs=400, warmup_epochs=100, lr_schedule="constant", ema_decay=0.9999)

RECIPES = {
    # about 1,400 steps where bf16 runs natively: a higher rate decayed on a cosine, and an EMA whose
    # horizon (~1000 steps, warmed up) fits the run (9 and 2 epochs of the 10,000 glyphs)
    "mar-tiny": Recipe(
        blr=4e-3, batch_per_process=64, steps=1404, warmup_steps=312, lr_schedule="cosine", ema_decay=0.999
    ),
    # mar-tiny's rate and EMA over the steps that fit 15 minutes on a 2-core CPU with native bf16 (40 epochs of the
    # glyphs)
    "mar-micro": Recipe(
        blr=4e-3, batch_per_process=64, steps=6240, warmup_steps=312, lr_schedule="cosine", ema_decay=0.999
    ),
    "mar-base": PAPER,
    "mar-large": PAPER,
    "mar-huge": PAPER,
}

# A CPU without native bf16 (AVX2 only) trains in fp32 at about half the speed of one with it. mar-micro there
# trains in steps of 32 (at equal images, 32 beat 64 on the same seed) for 24 epochs of the glyphs: on an AVX2-only EPYC that took
# 13.7 minutes and drew 0.91 and 0.97 of its grid with training seeds 0 and 1 (0.94 and 0.95 on the AMX Xeon in
# fp32); 22 drew 0.91-0.92 at one thread but 0.89 at two, and 14 drew 0.76-0.84 (docs/results.md,
# docs/experiments/2026-12-02-fp32-recipe.md).
CPU_FP32_RECIPES = {
    "mar-micro": Recipe(
        blr=4e-3, batch_per_process=32, steps=7488, warmup_steps=312, lr_schedule="cosine", ema_decay=0.999
    ),
    "mar-tiny": Recipe(
        blr=4e-3, batch_per_process=64, steps=936, warmup_steps=156, lr_schedule="cosine", ema_decay=0.999
    ),
}


def default_model(device_type: str) -> str:
    """The named size ``--model auto`` trains: mar-micro on a CPU, mar-tiny elsewhere.

    On 2-core CPUs mar-micro trained at 2.8-3.1 times mar-tiny's images per second (separate runs, bf16 and fp32),
    and at equal training time was as accurate (docs/results.md,
    docs/experiments/2026-12-02-shipped-tokenizer-and-mar-micro.md).
    """
    return "mar-micro" if device_type == "cpu" else "mar-tiny"


def recipe_for(model: str, device_type: str, precision) -> Recipe:
    """The recipe of ``model``, or its CPU fp32 one when training runs on a CPU without mixed precision."""
    if device_type == "cpu" and precision is None and model in CPU_FP32_RECIPES:
        return CPU_FP32_RECIPES[model]
    return RECIPES[model]
