"""The quality of a run as it trains: a few hundred EMA samples scored by the data's held-out classifier at a few
points and at the end, kept in ``quality.csv``, TensorBoard and ``quality.png`` (class accuracy against the step,
each point labelled with its FID) beside ``loss.png``."""

import csv
from pathlib import Path

from mar.eval.run_quality import QualityJudge, sample_quality
from mar.sampling.config import SamplingConfig
from mar.train.run_log import draw_curve, read_rows, tensorboard_writer

POINTS = (0.25, 0.5, 0.75)  # shares of the run after which the samples are scored, besides its end
COLUMNS = ("step", "accuracy", "fid", "count", "cfg")


class QualityLog:
    """Scores samples at the steps ``due`` names and appends them to ``<folder>/quality.csv``; rows past
    ``resume_step`` from an earlier run are dropped, as in log.csv."""

    def __init__(
        self,
        judge: QualityJudge,
        folder: Path,
        num_classes: int,
        sampling: SamplingConfig,
        count: int,
        seed: int,
        resume_step: int = 0,
    ):
        self.judge, self.folder, self.num_classes = judge, Path(folder), num_classes
        self.sampling, self.count, self.seed = sampling, count, seed
        self.path = self.folder / "quality.csv"
        self.scored = set()  # shares of POINTS scored by this process
        kept = [row for row in read_rows(self.path) if int(row["step"]) <= resume_step]
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(kept)

    def point_due(self, step: int, total: int) -> float | None:
        """The share of POINTS that ``step`` of a run of ``total`` steps is the point of, when not scored yet (a
        schedule refitted to a longer one reaches a scored share again); None elsewhere and at the end (scored
        apart)."""
        if step >= total:
            return None
        due = [share for share in POINTS if step == max(1, round(share * total)) and share not in self.scored]
        return due[0] if due else None

    def score(
        self,
        step: int,
        model,
        tokenizer,
        save: bool = False,
        sampling: SamplingConfig | None = None,
        point: float | None = None,
    ) -> dict:
        """Scores ``count`` samples of ``model`` at ``step`` (with ``sampling``, else the log's); ``save`` keeps them in
        quality/samples-step-N.npz; ``point`` is the share of POINTS this scores, if any."""
        if point is not None:
            self.scored.add(point)
        sampling = sampling or self.sampling
        path = self.folder / "quality" / f"samples-step-{step:08d}.npz" if save else None
        scores = sample_quality(
            self.judge, model, tokenizer, self.num_classes, self.count, sampling, self.seed, save_to=path
        )
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, COLUMNS).writerow({"step": step, "cfg": sampling.cfg} | scores)
        writer = tensorboard_writer(self.folder)
        if writer is not None:
            with writer:
                writer.add_scalar("quality/class_accuracy", scores["accuracy"], step)
                writer.add_scalar("quality/fid", scores["fid"], step)
        self.plot(self.folder / "quality.png")
        return scores

    def rows(self) -> list[dict]:
        return [
            {
                "step": int(r["step"]),
                "accuracy": float(r["accuracy"]),
                "fid": float(r["fid"]),
                "count": int(r["count"]),
                "cfg": float(r.get("cfg") or self.sampling.cfg),  # files written before the column: the log's scale
            }
            for r in read_rows(self.path)
        ]

    def plot(self, path: Path) -> Path:
        rows = self.rows()
        return draw_curve(
            [(r["step"], r["accuracy"]) for r in rows],
            path,
            (640, 360),
            title=f"class accuracy of {self.count} samples (labels: accuracy, FID, guidance scale; real images FID "
            f"{self.judge.fid_floor:.2f})",
            markers=True,
            labels=[f"{r['accuracy']:.2f}, FID {r['fid']:.2f}, cfg {r['cfg']:g}" for r in rows],
        )
