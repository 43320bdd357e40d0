"""The guidance scale and temperature a run samples with, chosen from the data after training: the held-out
classifier judges a few hundred samples at each candidate scale, then at the paper's temperature 1.

Guidance trades diversity for class fidelity, and where that trade pays depends on the data and on how far the
model has trained: on the embedded glyphs class accuracy and FID both peak at cfg 2 and fall beyond it; on the
textures class accuracy keeps rising to cfg 6 while FID stays flat (docs/results.md). The choice keeps the scales
whose FID is within FID_SLACK of the best one and takes the most accurate of them, the lower scale on a tie.

The command line's temperature (0.3) was chosen on the glyphs, where a higher one costs class accuracy; on real
photographs, scanned digits and centred shapes, temperature 1 at the chosen scale drew samples as accurate or more
and with a lower FID (docs/experiments/2026-12-07-temperature-choice.md). So the chosen scale is scored once more at
temperature 1, which is kept only where it is at least as accurate and its FID no worse.
"""

from dataclasses import dataclass, replace

from mar.eval.run_quality import QualityJudge, sample_quality
from mar.sampling.config import SamplingConfig

CANDIDATES = (2.0, 3.0, 4.0, 6.0, 8.0)
FID_SLACK = 1.25  # a scale whose FID exceeds the best scale's by more than this factor is not chosen
OTHER_TEMPERATURE = 1.0  # the paper's: the head's noise unscaled


@dataclass(frozen=True)
class GuidanceChoice:
    cfg: float
    temperature: float
    scores: dict[float, dict]  # per candidate scale, at the run's temperature: accuracy, fid, count
    reason: str
    at_other_temperature: dict | None = None  # the chosen scale's scores at OTHER_TEMPERATURE, when it was tried

    def sampling(self) -> dict:
        """The chosen options as a checkpoint records them (``record_sampling``)."""
        return {"cfg": self.cfg, "temperature": self.temperature}


def choose_guidance(
    judge: QualityJudge,
    model,
    tokenizer,
    num_classes: int,
    sampling: SamplingConfig,
    count: int,
    seed: int,
    candidates: tuple[float, ...] = CANDIDATES,
    choose_temperature: bool = True,
) -> GuidanceChoice:
    """Scores ``count`` samples at every candidate scale (``sampling`` otherwise, the same seed for each) and
    chooses one; with ``choose_temperature`` then the temperature, ``sampling``'s or OTHER_TEMPERATURE."""
    scores = {
        cfg: sample_quality(judge, model, tokenizer, num_classes, count, replace(sampling, cfg=cfg), seed)
        for cfg in candidates
    }
    best_fid = min(s["fid"] for s in scores.values())
    admissible = [cfg for cfg in candidates if scores[cfg]["fid"] <= FID_SLACK * best_fid]
    chosen = max(admissible, key=lambda cfg: (scores[cfg]["accuracy"], -cfg))
    figures = ", ".join(f"{cfg:g}: {s['accuracy']:.3f} / {s['fid']:.2f}" for cfg, s in scores.items())
    reason = (
        f"class accuracy / FID of {scores[chosen]['count']} samples at each scale ({figures}); the most accurate "
        f"of those within {FID_SLACK:g}x the best FID"
    )
    if not choose_temperature or sampling.temperature == OTHER_TEMPERATURE:
        return GuidanceChoice(chosen, sampling.temperature, scores, reason)
    other = sample_quality(
        judge, model, tokenizer, num_classes, count, replace(sampling, cfg=chosen, temperature=OTHER_TEMPERATURE), seed
    )
    base = scores[chosen]
    better = other["accuracy"] >= base["accuracy"] and other["fid"] <= base["fid"]
    temperature = OTHER_TEMPERATURE if better else sampling.temperature
    reason += (
        f"; at temperature {OTHER_TEMPERATURE:g} {other['accuracy']:.3f} / {other['fid']:.2f}, "
        + ("as accurate and no worse in FID" if better else "less accurate or worse in FID")
        + f": temperature {temperature:g}"
    )
    return GuidanceChoice(chosen, temperature, scores, reason, other)
