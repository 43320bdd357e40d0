"""A run's time budget: how many steps fit before the command must end. The pace of steps 50 to 300 sets a first,
cautious length; every REFIT_EVERY steps or REFIT_EVERY_S seconds after that, whichever comes first, the length is
set again from the pace so far (the quality points and sample grids during training included) and the reserve kept
for the work after training, which the run revises once it has timed its own sampling."""

import time
from dataclasses import dataclass

# The first length comes from the pace of these steps taken FIRST_MARGIN times slower, as later steps ran up to 1.28
# times slower on a shared 2-core host. A refit measures the pace over every step since TIMED_FROM, with a smaller
# margin.
TIMED_FROM, TIMED_TO, FIRST_MARGIN, REFIT_MARGIN = 50, 300, 1.2, 1.05
# Steps or seconds between refits after TIMED_TO, whichever come first: the seconds bound how long a run that slows
# down mid-way (a busy host) goes on at a pace it no longer has.
REFIT_EVERY, REFIT_EVERY_S = 500, 60.0


@dataclass
class TimeBudget:
    ends_at: float  # time.time() by which the whole command must end
    reserve_s: float  # seconds kept after training; the run revises it (e.g. once it has timed its sampling)

    @property
    def deadline(self) -> float:
        """time.time() by which training must end."""
        return self.ends_at - self.reserve_s

    def length(
        self, step: int, steps: int, seconds_per_step: float, warmup_steps: int, first: bool
    ) -> tuple[int, float]:
        """(the schedule's length, at most ``steps``, that ends by the deadline; the pace it assumed) at ``step``,
        from the pace measured since TIMED_FROM; ``first`` for the fit at TIMED_TO, which takes the larger margin."""
        pace = (FIRST_MARGIN if first else REFIT_MARGIN) * seconds_per_step
        return steps_that_fit(step, steps, pace, self.deadline - time.time(), warmup_steps), pace

    def explain(self, step: int, fitted: int, was: int, pace: float, first: bool) -> str:
        if first:
            return (
                f"time budget: at {pace:.3f} s per step (with a margin) the run would end after its budget; it trains "
                f"{fitted} of its {was} steps, the learning-rate schedule shortened to match (--time-budget 0 trains "
                "them all)"
            )
        return (
            f"time budget at step {step}: at {pace:.3f} s per step (the run so far, with a margin), "
            f"{self.reserve_s:.0f} s kept for the samples and scores after training, the run trains {fitted} steps "
            f"instead of {was}, the learning-rate schedule refitted to match"
        )


def steps_that_fit(step: int, total: int, seconds_per_step: float, seconds_left: float, warmup_steps: int) -> int:
    """The schedule's length when ``total`` steps at this pace would not end in ``seconds_left`` from ``step``: the
    steps that fit, rounded down to a multiple of 100 (so that runs at nearly the same pace train the same), never
    shorter than the warmup and 100 steps more nor than the ``step`` steps done; ``total`` when it fits."""
    if (total - step) * seconds_per_step <= seconds_left:
        return total
    fits = step + int(seconds_left / seconds_per_step)
    return min(total, max(fits // 100 * 100, warmup_steps + 100, step))
