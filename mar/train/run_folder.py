"""A run folder is owned: one process at a time (a lock file), and a fresh run never writes over an earlier one.

The lock is ``<run>/run.lock``, created exclusively and holding ``<pid> <host>``. It is removed on exit; a lock
whose process is gone (same host, no such pid) is stale and taken over, so a crash never blocks the folder.
"""

import os
import shutil
import socket
import time
from pathlib import Path

LOCK = "run.lock"
RUN_FILES = (
    "checkpoints",
    "log.csv",
    "loss.png",
    "metrics.json",
    "samples",
    "samples.png",
    "tensorboard",
)  # what --overwrite removes


class RunFolderError(RuntimeError):
    pass


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _owner(lock: Path) -> tuple[int, str] | None:
    """(pid, host) written in the lock, or None when it is empty or garbled."""
    try:
        pid, host = lock.read_text().split()
        return int(pid), host
    except (OSError, ValueError):
        return None


def _is_stale(lock: Path) -> bool:
    owner = _owner(lock)
    if owner is None:  # a writer that died between creating and filling it, unless it is doing so right now
        try:
            return time.time() - lock.stat().st_mtime > 10
        except FileNotFoundError:
            return True
    pid, host = owner
    return host == socket.gethostname() and not _process_alive(pid)


class RunLock:
    """``with RunLock(folder):`` holds the folder for this process; a second holder gets RunFolderError."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK
        self.mine = f"{os.getpid()} {socket.gethostname()}\n"

    def __enter__(self) -> "RunLock":
        self.created = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not _is_stale(self.path):
                    pid, host = _owner(self.path) or ("?", "?")
                    raise RunFolderError(
                        f"run folder {self.path.parent} is in use by process {pid} on {host} (lock file {self.path}); "
                        "wait for that run to end, or pass another --output; if no such process runs, delete the lock file"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(descriptor, "w") as f:
                f.write(self.mine)
            return self
        raise RunFolderError(f"could not take the lock {self.path}: another process keeps taking it; try again")

    def __exit__(self, *exc) -> None:
        try:
            if self.path.read_text() == self.mine:
                self.path.unlink()
        except FileNotFoundError:
            pass
        if self.created and not any(self.path.parent.iterdir()):  # a run refused before writing leaves no folder
            self.path.parent.rmdir()


def holds_run(folder: str | Path) -> bool:
    """Whether ``folder`` already has checkpoints of a training run."""
    checkpoints = Path(folder) / "checkpoints"
    return checkpoints.is_dir() and any(checkpoints.iterdir())


def check_fresh_start(folder: str | Path, resume: bool, overwrite: bool) -> None:
    """Refuses to start a new run over an earlier one unless --resume or --overwrite says what to do with it."""
    if resume and overwrite:
        raise RunFolderError(
            "--resume and --overwrite contradict each other: continue the run in --output, or replace it"
        )
    if not resume and not overwrite and holds_run(folder):
        raise RunFolderError(
            f"{folder} already holds a training run (checkpoints in {Path(folder) / 'checkpoints'}); continue it with "
            "--resume, replace it with --overwrite, or pass another --output"
        )


def clear_run(folder: str | Path) -> None:
    """Removes an earlier run's checkpoints, log and samples (for --overwrite); tokenizer and latents stay."""
    for name in RUN_FILES:
        path = Path(folder) / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
