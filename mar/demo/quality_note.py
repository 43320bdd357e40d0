"""The quality figures train.py measured for a run (its metrics.json), as the demo page shows them."""

import json
from pathlib import Path


def run_metrics(source: str | Path) -> dict | None:
    """metrics.json of the run that ``source`` (a run folder, one of its checkpoint folders or weights files) belongs
    to, when it holds quality figures; None otherwise (a hub folder or id, a run scored with --quality off)."""
    path = Path(source).resolve()
    for folder in [path, *path.parents][:4]:  # run/checkpoints/step-N/weights.safetensors at most
        metrics = folder / "metrics.json"
        if metrics.is_file():
            record = json.loads(metrics.read_text())
            return record if "sample_accuracy" in record else None
    return None


def quality_note(source: str | Path) -> str:
    """Markdown: the held-out classifier's figures for the run's samples, or a line saying there are none."""
    record = run_metrics(source)
    if record is None:
        return "No quality figures for this checkpoint (train.py writes them to metrics.json with --quality on)."
    during = ", ".join(f"step {r['step']}: {r['accuracy']:.2f} / {r['fid']:.2f}" for r in record["during_training"])
    return (
        f"**Quality at the end of training** (step {record['steps']}, the data's held-out classifier, which scores "
        f"{record['classifier_accuracy']:.3f} on real held-out images): class accuracy "
        f"{record['sample_accuracy']:.3f} of {record['samples_scored']} samples, FID {record['sample_fid']:.2f} "
        f"(real images {record['fid_floor']:.2f}); grid {record['grid_accuracy']:.2f}. "
        f"Accuracy / FID during training: {during}."
    )
