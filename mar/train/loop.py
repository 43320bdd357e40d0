"""The training loop: one process or many (DistributedDataParallel), EMA, gradient accumulation, mixed precision,
checkpoints that resume exactly, non-finite losses skipped, and a clean stop on SIGTERM.

Exact resumption rests on one rule: every random draw of a step comes from generators seeded by (seed, step,
shard), where a shard is one micro-batch of one rank, and the data order of an epoch from (seed, epoch). A
resumed run therefore draws what the uninterrupted run would have drawn, and a global batch is the same
world_size x grad_accum shards whether they run on one process or many.
"""

import signal
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from mar import distributed
from mar.data.latents import CodeSet, LatentSet
from mar.precision import autocast
from mar.train.budget import REFIT_EVERY, REFIT_EVERY_S, TIMED_FROM, TIMED_TO, TimeBudget
from mar.train.checkpoint import TrainingState, save_training_checkpoint
from mar.train.ema import EMA
from mar.train.optim import lr_factor, make_optimizer
from mar.train.run_log import RunLog


@dataclass(frozen=True)
class TrainSettings:
    steps: int  # optimizer steps of the whole schedule
    batch_size: int  # global: images per optimizer step over all processes and accumulation steps
    lr: float  # after warmup (already scaled by the global batch)
    warmup_steps: int
    lr_schedule: str = "constant"
    weight_decay: float = 0.02
    grad_clip: float = 3.0
    grad_accum: int = 1
    ema_decay: float = 0.9999
    precision: torch.dtype | None = None  # autocast dtype; float16 adds a gradient scaler
    seed: int = 0
    save_every: int = 1000  # steps
    keep_checkpoints: int = 2
    max_bad_steps: int = 5  # non-finite losses in a row before training stops
    stop_after: int | None = None  # stop (with a checkpoint) after this many steps in all, as a budget
    budget: TimeBudget | None = None  # when the command must end: the schedule's length is fitted to it
    log_every: int = 20
    progress: bool = True
    dataset: str = ""  # names the data (see mar.cli.dataset_name), so a resume on other data is refused
    optimised: bool = True  # the fast step (fused AdamW); False runs the plain one, for benchmarks/speed.py to compare


class TrainingStopped(RuntimeError):
    """Training cannot go on (repeated non-finite losses); the last good checkpoint is intact."""


def run_data(num_images: int, settings: TrainSettings) -> dict:
    """What a resumed run must share with the run it continues to repeat it exactly."""
    return {
        "num_images": num_images,
        "batch_size": settings.batch_size,
        "seed": settings.seed,
        "dataset": settings.dataset,
    }


def check_resume_data(saved: dict, now: dict) -> None:
    """ValueError naming each difference; a field an older checkpoint did not record is not compared."""
    differences = "; ".join(f"{k}: {saved[k]} != {v}" for k, v in now.items() if k in saved and saved[k] != v)
    if differences:
        raise ValueError(
            f"the checkpoint was trained on other data or settings (saved != now: {differences}); "
            "resume with the same data, --batch-size and --seed, or start a new --output"
        )


def shard_seed(seed: int, step: int, shard: int) -> int:
    return (seed * 1_000_003 + step) * 4099 + shard


def epoch_order(num_images: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(num_images, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


class StopSignals:
    """Notes a SIGTERM (a preemption) or SIGINT (Ctrl-C) so the loop can save and stop between steps.

    A second SIGINT raises KeyboardInterrupt at once. The old handlers come back on exit. Outside the main thread,
    where Python cannot install handlers, nothing is installed.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.name: str | None = None  # of the first signal received
        self.previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.name = self.name or signal.Signals(signum).name

    def __exit__(self, *exc):
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak resident set, KiB on Linux


def fit(
    model,
    ema: EMA,
    latents: LatentSet | CodeSet,
    tokenizer,
    settings: TrainSettings,
    device: torch.device,
    run_dir: Path,
    checkpoint_info: dict,
    resume: TrainingState | None = None,
    on_step: Callable[[int, int], None] | None = None,
) -> dict:
    """Trains ``model`` (and its ``ema``) in place from ``resume`` or from step 0; returns {"step", "loss", "stopped_by"},
    ``stopped_by`` being "end" or the signal that stopped training with a checkpoint ("SIGTERM", "SIGINT"), and
    ``loss`` None when ``resume`` is already at the last step (nothing trained, no checkpoint written).

    ``checkpoint_info`` holds the classes and image size written into checkpoints. Raises ``TrainingStopped`` after
    ``max_bad_steps`` non-finite losses in a row, and ValueError for a batch that does not split into the shards.
    ``on_step(step, schedule steps)`` runs after every step (e.g. to draw sample grids). With ``settings.budget`` a
    fresh run fits its schedule's length to the time left, at step 300 and every 500 steps or 60 seconds after, never
    past ``settings.steps`` (mar/train/budget.py); the length is saved in checkpoints, so a resumed run keeps it.
    """
    rank, world = distributed.rank(), distributed.world_size()
    shards = world * settings.grad_accum
    if settings.batch_size % shards:
        raise ValueError(
            f"--batch-size {settings.batch_size} is not divisible by processes x --grad-accum = {shards}; "
            f"use a multiple of {shards}"
        )
    micro = settings.batch_size // shards
    steps_per_epoch = len(latents) // settings.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"--batch-size {settings.batch_size} is larger than the dataset ({len(latents)} images); lower it"
        )
    schedule_total = settings.steps
    if resume is not None and resume.schedule_steps is not None:  # a schedule shortened to meet a deadline stays so
        schedule_total = resume.schedule_steps
    total = schedule_total if settings.stop_after is None else min(schedule_total, settings.stop_after)
    data = run_data(len(latents), settings)

    optimizer = make_optimizer(model, settings.lr, settings.weight_decay, fused=settings.optimised)
    scaler = torch.amp.GradScaler(device.type, enabled=settings.precision == torch.float16)
    step, bad_in_row = 0, 0
    if resume is not None:
        check_resume_data(resume.data, data)
        optimizer.load_state_dict(resume.optimizer)
        if resume.scaler:
            scaler.load_state_dict(resume.scaler)
        step, bad_in_row = resume.step, resume.bad_steps_in_row
    if step >= total:  # a finished run resumed: its checkpoint stays as it is
        return {"step": step, "loss": None, "stopped_by": "end"}
    trained = DistributedDataParallel(model) if world > 1 else model
    log = RunLog(run_dir, resume_step=step) if rank == 0 else None

    def save(reason: str) -> None:
        if rank == 0:
            state = TrainingState(
                step=step,
                epoch=step // steps_per_epoch,
                position=step % steps_per_epoch,
                optimizer=optimizer.state_dict(),
                scaler=scaler.state_dict() if scaler.is_enabled() else {},
                data=data,
                bad_steps_in_row=bad_in_row,
                schedule_steps=schedule_total if schedule_total != settings.steps else None,
            )
            path = save_training_checkpoint(
                run_dir, model, ema, tokenizer, state, keep=settings.keep_checkpoints, **checkpoint_info
            )
            log.plot_loss(run_dir / "loss.png")
            tqdm.write(f"checkpoint ({reason}, step {step}): {path}")
        distributed.barrier()

    generator = torch.Generator(device)
    bar = tqdm(total=total, initial=step, desc="training", disable=not settings.progress or rank != 0)
    model.train()
    stopped_by, last_loss, tick, since = "end", float("nan"), time.time(), 0
    timed_from = fitted_at = time.time()
    budget = settings.budget if resume is None else None  # a resumed run keeps the length it was given
    order_epoch, order = -1, None
    with StopSignals() as signals:
        while step < total:
            epoch, position = divmod(step, steps_per_epoch)
            if epoch != order_epoch:  # one permutation per epoch, not per step
                order_epoch, order = epoch, epoch_order(len(latents), settings.seed, epoch)
            batch = order[position * settings.batch_size :][: settings.batch_size]
            own = batch.to(device).view(world, settings.grad_accum, micro)[
                rank
            ]  # (grad_accum, micro): this process's shards
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * lr_factor(step, settings.warmup_steps, schedule_total, settings.lr_schedule)
            loss_sum = torch.zeros((), device=device)
            for j, index in enumerate(own):
                seed = shard_seed(settings.seed, step, rank * settings.grad_accum + j)
                generator.manual_seed(seed)
                torch.manual_seed(seed)  # dropout inside timm blocks draws from the global generator
                x, labels = latents.draw(tokenizer, index, generator)
                last_shard = j == settings.grad_accum - 1
                with (
                    nullcontext() if world == 1 or last_shard else trained.no_sync(),
                    autocast(device, settings.precision),
                ):
                    loss = trained(x, labels, generator) / settings.grad_accum
                scaler.scale(loss).backward()
                loss_sum += loss.detach().float()
            scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            # one all-reduce: the summed loss, how many processes saw a non-finite loss, whether any got a stop signal,
            # and whether rank 0's clock says a refit of the time budget is due
            totals = distributed.all_reduce_sum(
                torch.stack(
                    [
                        loss_sum,
                        (~torch.isfinite(loss_sum)).float(),
                        torch.tensor(float(signals.name is not None), device=device),
                        torch.tensor(float(rank == 0 and time.time() - fitted_at >= REFIT_EVERY_S), device=device),
                    ]
                )
            ).tolist()
            mean_loss = totals[0] / world
            # with fp16 the scaler skips steps with overflowing gradients itself and lowers its scale
            bad = totals[1] > 0 or (not scaler.is_enabled() and not torch.isfinite(grad_norm).item())
            if bad:
                optimizer.zero_grad(set_to_none=True)
                bad_in_row += 1
                tqdm.write(
                    f"step {step + 1}: non-finite loss {mean_loss} or gradient norm {grad_norm.item()}; "
                    f"step skipped ({bad_in_row} in a row)"
                )
                if bad_in_row >= settings.max_bad_steps:
                    bar.close()
                    raise TrainingStopped(
                        f"training stopped at step {step + 1} after {bad_in_row} non-finite losses in a row; the last good "
                        f"checkpoint in {run_dir / 'checkpoints'} is intact; lower --lr, raise --grad-clip, or check the data"
                    )
            else:
                scaler.step(optimizer)
                optimizer.zero_grad(set_to_none=True)
                ema.update(model, step)
                bad_in_row = 0
                last_loss = mean_loss
            scaler.update()
            step += 1
            since += 1
            bar.update()
            if step % settings.log_every == 0 and rank == 0:
                rate = since * settings.batch_size / (time.time() - tick)
                log.write(
                    step=step,
                    epoch=epoch,
                    loss=mean_loss,
                    lr=optimizer.param_groups[0]["lr"],
                    grad_norm=grad_norm.item(),
                    images_per_s=rate,
                    memory_mb=memory_mb(device),
                )
                bar.set_postfix(
                    epoch=epoch, loss=f"{mean_loss:.4f}", grad=f"{grad_norm.item():.2f}", img_s=f"{rate:.0f}"
                )
                tick, since = time.time(), 0
            if step == TIMED_FROM:
                timed_from = time.time()
            due = step % REFIT_EVERY == 0 or totals[3] > 0
            refit = budget is not None and step < total and (step == TIMED_TO or (step > TIMED_TO and due))
            if on_step is not None:
                on_step(step, schedule_total)
            if refit:
                first, fitted_at = step == TIMED_TO, time.time()
                seconds_per_step = (fitted_at - timed_from) / (step - TIMED_FROM)  # scoring and grids included
                fitted, pace = budget.length(step, settings.steps, seconds_per_step, settings.warmup_steps, first)
                fitted = int(distributed.all_reduce_sum(torch.tensor(fitted if rank == 0 else 0)).item())  # rank 0's
                if fitted != schedule_total:
                    tqdm.write(budget.explain(step, fitted, schedule_total, pace, first))
                    schedule_total = fitted
                    total = fitted if settings.stop_after is None else min(fitted, settings.stop_after)
                    bar.total = total
            if totals[2] > 0:
                stopped_by = signals.name or "a signal on another process"
                break
            if step % settings.save_every == 0 and step < total:
                save("periodic")
    bar.close()
    save(stopped_by)
    if log is not None:
        log.close()
    return {"step": step, "loss": last_loss, "stopped_by": stopped_by}
