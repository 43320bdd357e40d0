"""mar compare's report: per-seed scores gathered into means with 95% intervals, one verdict line per claim, markdown."""

import json
import math

from mar.eval.intervals import Interval, mean_interval, verdict

METRICS = (
    "fid",
    "accuracy",
    "precision",
    "recall",
    "psnr",
    "rfid",
    "usage",
    "images_per_s",
    "inception_fid",
    "inception_score",
)
LOWER_IS_BETTER = {"fid": True, "accuracy": False}  # the metrics a claim is made on
REFERENCE_VARIANT = "kl-diffusion"  # the paper's claim: this one is ahead of every other


def gather(seed_rows: list[dict]) -> list[dict]:
    """Rows of one (variant, cfg) per seed -> one row per (variant, cfg) with an Interval per metric, first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for row in seed_rows:
        groups.setdefault((row["variant"], row["cfg"]), []).append(row)
    gathered = []
    for rows in groups.values():
        row = {
            key: rows[0][key]
            for key in ("variant", "cfg", "tokenizer", "head", "lr", "warmup_epochs", "paper_fid")
            if key in rows[0]
        }
        row |= {"seeds": [r["seed"] for r in rows]}
        row |= {m: mean_interval([r[m] for r in rows]) for m in METRICS if all(m in r for r in rows)}
        gathered.append(row)
    return gathered


def claims(rows: list[dict], pairs: list[tuple[str, str]] = ()) -> list[str]:
    """For each guidance setting: is the reference variant ahead of each other one on FID and on class accuracy, and
    is the first of each of ``pairs`` (the diffusion head of a Table 1 row) ahead of the second (its cross-entropy)?"""
    lines = []
    for cfg in dict.fromkeys(row["cfg"] for row in rows):
        at_cfg = {row["variant"]: row for row in rows if row["cfg"] == cfg}
        compared = [(REFERENCE_VARIANT, name) for name in at_cfg if name != REFERENCE_VARIANT]
        compared += [pair for pair in pairs if pair not in compared]
        for first, second in compared:
            if first in at_cfg and second in at_cfg:
                lines += [
                    f"cfg {cfg:g}, "
                    + verdict(metric, first, at_cfg[first][metric], second, at_cfg[second][metric], lower)
                    for metric, lower in LOWER_IS_BETTER.items()
                ]
    return lines


def cell(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, Interval):
        if value.n == 1 or not math.isfinite(value.high):
            return f"{value.mean:.{digits}f}"
        return f"{value.mean:.{digits}f} [{value.low:.{digits}f}, {value.high:.{digits}f}]"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def to_json(value):
    """Intervals as {mean, low, high, n} dicts (infinite bounds as null), everything else unchanged."""
    if isinstance(value, Interval):
        low, high = (bound if math.isfinite(bound) else None for bound in (value.low, value.high))
        return {"mean": value.mean, "low": low, "high": high, "n": value.n}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def table(rows: list[dict]) -> str:
    columns = [
        ("variant", "variant"),
        ("guidance", "cfg"),
        ("lr / warmup ep.", "recipe"),
        ("FID", "fid"),
        ("class acc.", "accuracy"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("tok. PSNR (dB)", "psnr"),
        ("tok. rFID", "rfid"),
        ("codebook usage", "usage"),
        ("images/s", "images_per_s"),
    ]
    if any("paper_fid" in row for row in rows):  # the paper's ranking is what carries over, not its values
        columns.insert(3, ("paper FID (MAR-L, ImageNet 256)", "paper_fid"))
    if any("inception_fid" in row for row in rows):
        columns += [("Inception FID", "inception_fid"), ("IS", "inception_score")]
    lines = ["| " + " | ".join(c[0] for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        row = row | ({"recipe": f"{row['lr']:.3g} / {row['warmup_epochs']:g}"} if "lr" in row else {})
        lines.append(
            "| "
            + " | ".join(
                cell(row.get(key), 1 if key in ("images_per_s", "cfg") else 2 if key == "paper_fid" else 3)
                for _, key in columns
            )
            + " |"
        )
    return "\n".join(lines)


def sweep_tables(results: dict) -> str:
    budget = results["budget"]
    parts = []
    for name, points in results["recipe_sweeps"].items():
        parts.append(
            f"\nRecipe sweep of {name} (held-out loss of {len(points)} runs of {budget['sweep_epochs']} epochs, "
            "lowest chosen):\n\n| lr | warmup epochs | held-out loss |\n|---|---|---|\n"
            + "\n".join(
                f"| {p['lr']:.3g} | {p['warmup_epochs']:g} | {p['held_out_loss']:.4f}"
                + (" (chosen)" if p.get("chosen") else "")
                + " |"
                for p in points
            )
        )
    for title, axis in (
        (f"Temperature sweep, K = {budget['num_iter']}", "temperature"),
        ("K sweep, temperature 1", "num_iter"),
    ):
        if results["sweeps"].get(axis):
            parts.append(
                f"\n{title} ({REFERENCE_VARIANT}, seed {results['seeds'][0]}, cfg {budget['cfg']:g}, "
                f"{budget['sweep_per_class']} samples per class):\n\n| {axis} | FID | class acc. |\n|---|---|---|\n"
                + "\n".join(f"| {p[axis]:g} | {p['fid']:.3f} | {p['accuracy']:.3f} |" for p in results["sweeps"][axis])
            )
    return "\n".join(parts)


def markdown(results: dict) -> str:
    classifier = results["classifier"]
    return (
        f"Command: `{results['command']}`  \nMachine: {results['machine']}  \n"
        f"Budget {results['budget_name']}: {json.dumps(results['budget'])}  \n"
        f"Seeds {results['seeds']}: each trains its own "
        + (
            "tokenizer and generator"
            if results["budget"].get("tokenizer_per_seed", True)
            else "generator on the first seed's tokenizers"
        )
        + " and draws its own samples; "
        "cells are means with 95% t intervals over the seeds.  \n"
        f"Feature classifier: test accuracy {classifier['test_accuracy']:.3f} on {classifier['test_images']} held-out images; "
        f"{results['samples_per_setting']} samples per setting and seed; wall time {results['seconds']:.0f} s\n\n"
        + table(results["rows"])
        + "\n\nClaims (settled only where the 95% intervals are disjoint):\n\n"
        + "\n".join(f"- {line}" for line in results["claims"])
        + "\n"
        + sweep_tables(results)
        + "\n"
    )
