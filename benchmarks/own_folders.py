"""The one-command path on folders it was not tuned on: `python train.py --data-path DIR --output RUN`, nothing else,
one folder at a time, then a table of wall time and the run's own quality report (metrics.json).

The targets (docs/results.md): within 15 minutes on 2 cores, at least 0.90 class accuracy of the final samples by a
held-out classifier that scores at least 0.97 on real images, and a sample FID within 3x of the real-image floor.
Write the folders first with benchmarks/image_sets.py. Run nothing else meanwhile (2 cores).

Example:
    for kind in digits shapes photos mirrored; do python benchmarks/image_sets.py --kind $kind --output data/$kind; done
    mar make-textures --output data/textures --per-class 600
    python benchmarks/own_folders.py data/digits data/shapes data/photos data/mirrored data/textures --runs runs/own
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_one(folder: Path, output: Path, extra: list[str]) -> dict:
    """Trains on ``folder`` with the plain command (plus ``extra``); its metrics.json and wall time."""
    command = [sys.executable, str(ROOT / "train.py"), "--data-path", str(folder), "--output", str(output)]
    started = time.time()
    with open(output.parent / f"{output.name}.log", "w") as log:
        subprocess.run(command + ["--no-progress"] + extra, stdout=log, stderr=subprocess.STDOUT, check=True)
    record = json.loads((output / "metrics.json").read_text())
    return record | {"wall_s": round(time.time() - started, 1)}


def row(name: str, r: dict) -> str:
    tokenizer = r["tokenizer"]
    return (
        f"| {name} | {r['wall_s']:.0f} s | {r['steps']} | {'on' if r['mirrored_views'] else 'off'} | "
        f"{tokenizer['psnr']:.2f} dB, {tokenizer['accuracy_reconstructed']:.3f} | {r['classifier_accuracy']:.3f} | "
        f"{r['grid_accuracy']:.2f} | **{r['sample_accuracy']:.3f}** | {r['sample_fid']:.2f} | {r['fid_floor']:.2f} | "
        f"{r['sample_fid'] / r['fid_floor']:.1f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="ImageFolder roots")
    parser.add_argument("--runs", type=Path, default=Path("runs/own"), help="where the run folders go")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="options added to every run")
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    print(
        "| folder | wall | steps | mirrored views | tokenizer: PSNR, classifier on reconstructions | classifier on real "
        "| grid | samples: class accuracy | FID | real-image FID | FID / floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for folder in args.folders:
        print(row(folder.name, run_one(folder, args.runs / folder.name, args.extra)), flush=True)


if __name__ == "__main__":
    main()
