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


@pytest.fixture(scope="module")
def categorical_generator():
    """(FSQ tokenizer, untrained generator with a categorical head over its 12 codes): 3 classes, 4 tokens."""
    import torch

    from mar import CategoricalConfig, MARGenerator, named_config
    from vae import DiscreteConfig, DiscreteTokenizer, FSQConfig

    torch.manual_seed(0)
    tokenizer = DiscreteTokenizer(
        DiscreteConfig(kind="fsq", stride=4, width=16, fsq=FSQConfig(levels=(3, 2, 2)))
    ).eval()
    config = named_config(
        "mar-tiny",
        width=32,
        encoder_depth=1,
        decoder_depth=1,
        num_heads=2,
        num_classes=3,
        buffer_size=1,
        latent_channels=3,
        latent_size=4,
        patch_size=2,
        head=CategoricalConfig(width=32, codebook_size=12),
    )
    return tokenizer, MARGenerator(config, tokenizer.latent_codebook()).eval()
