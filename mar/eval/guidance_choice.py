"""The guidance scale a run samples with, chosen from the data after training: the held-out classifier judges a
few hundred samples at each candidate scale.

Guidance trades diversity for class fidelity, and where that trade pays depends on the data and on how far the
model has trained: on the embedded glyphs class accuracy and FID both peak at cfg 2 and fall beyond it; on the
textures class accuracy keeps rising to cfg 6 while FID stays flat (docs/results.md). The choice keeps the scales
whose FID is within FID_SLACK of the best one and takes the most accurate of them, the lower scale on a tie.
"""

from dataclasses import dataclass, replace

from mar.eval.run_quality import QualityJudge, sample_quality
from mar.sampling.config import SamplingConfig

CANDIDATES = (2.0, 3.0, 4.0, 6.0, 8.0)
FID_SLACK = 1.25  # a scale whose FID exceeds the best scale's by more than this factor is not chosen


@dataclass(frozen=True)
class GuidanceChoice:
    cfg: float
    scores: dict[float, dict]  # per candidate scale: accuracy, fid, count
    reason: str


def choose_guidance(
    judge: QualityJudge,
    model,
    tokenizer,
    num_classes: int,
    sampling: SamplingConfig,
    count: int,
    seed: int,
    candidates: tuple[float, ...] = CANDIDATES,
) -> GuidanceChoice:
    """Scores ``count`` samples at every candidate scale (``sampling`` otherwise, the same seed for each) and
    chooses one."""
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
    return GuidanceChoice(chosen, scores, reason)
