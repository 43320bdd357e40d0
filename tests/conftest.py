import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the suite may reach a hub


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A run folder of train.py at the toy budget, shared by the script tests (which must not change it)."""
    from mar.cli import train

    from .toy import TOY

    out = tmp_path_factory.mktemp("run")
    train.main(
        TOY + ["--output", str(out), "--cache-dir", str(out / "cache"), "--sample-every", "5", "--log-every", "2"]
    )
    return out


@pytest.fixture(scope="session")
def trained_head():
    """The diffusion head fitted to the known mixture, trained once per session for every module that samples it."""
    from .mixture import train_head  # here, not at the top: diffusers must import after HF_HUB_OFFLINE is set

    return train_head()
