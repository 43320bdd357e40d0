"""The causal model (the paper's Table 1 AR rows): exact causality, the key/value cache, training and checkpoints."""

from dataclasses import replace

import pytest
import torch

from mar import CategoricalConfig, MARConfig, MARGenerator, load_checkpoint, sample_latents
from mar.model.masking import random_orders
from mar.model.tokens import patchify
from mar.sampling.causal import sample_causal
from mar.sampling.config import SamplingConfig
from mar.train.checkpoint import save_weights
from vae import KLTokenizer, small_autoencoder

from .tiny import TINY

# 9 tokens (a 6x6 latent grid in patches of 2) after 3 buffer tokens: an odd prefix and an odd sequence.
CAUSAL = replace(TINY, attention="causal", latent_size=6, buffer_size=3)


def causal_model(seed: int = 0, **overrides) -> MARGenerator:
    """A causal generator whose zero-initialised layers are perturbed, so that z and samples depend on the tokens."""
    torch.manual_seed(seed)
    model = MARGenerator(replace(CAUSAL, **overrides))
    with torch.no_grad():
        for p in model.parameters():
            if not torch.any(p != 0):
                p.normal_(std=0.05)
    return model.eval()


def test_changing_a_later_token_leaves_every_earlier_z_bitwise_unchanged():
    model, g = causal_model(), torch.Generator().manual_seed(0)
    tokens, labels = torch.randn(3, 9, 16, generator=g), torch.tensor([0, 2, 4])
    order = random_orders(3, 9, generator=g)
    z = model.backbone(tokens, labels, order)  # (b, l, d) in position order
    for k in range(9):
        changed = tokens.clone()
        changed[torch.arange(3), order[:, k]] += torch.randn(3, 16, generator=g)
        z_changed = model.backbone(changed, labels, order)
        for b in range(3):
            earlier = order[b, : k + 1]  # the z of the k-th token and of those before it see tokens before it only
            assert torch.equal(z_changed[b, earlier], z[b, earlier])
            assert not torch.equal(z_changed[b, order[b, k + 1 :]], z[b, order[b, k + 1 :]]) or k == 8


def test_the_gradient_of_z_reaches_only_the_tokens_before_it_in_the_order():
    model = causal_model(order="raster")
    tokens = torch.randn(1, 9, 16, requires_grad=True)
    z = model.backbone(tokens, torch.tensor([1]))  # raster order: (1, l, d)
    direction = torch.randn(z.shape[-1])  # not all ones: the final LayerNorm's outputs sum to a constant
    for i in range(9):
        (grad,) = torch.autograd.grad(z[0, i] @ direction, tokens, retain_graph=True)
        seen = grad[0].abs().sum(-1) != 0  # (l,)
        assert seen[:i].all() and not seen[i:].any(), (i, seen)


def test_raster_order_is_row_major_over_the_latent_grid():
    model = causal_model(order="raster")
    latents = torch.randn(1, 4, 6, 6)
    tokens = patchify(latents, 2)  # (1, 9, 16): token 3 is the second row's first patch
    changed = latents.clone()
    changed[:, :, 2:4, 0:2] += 1.0  # that patch
    z, z_changed = model.backbone(tokens, torch.tensor([0])), model.backbone(patchify(changed, 2), torch.tensor([0]))
    assert torch.equal(z[0, :4], z_changed[0, :4]) and not torch.equal(z[0, 4:], z_changed[0, 4:])


@pytest.mark.parametrize("head", ["diffusion", "categorical"])
@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_cached_sampling_equals_recomputing_the_prefix(head, cfg):
    overrides = {"head": CategoricalConfig(width=32, codebook_size=8)} if head == "categorical" else {}
    model = causal_model(**overrides)
    if head == "categorical":
        model.head.codebook.copy_(torch.randn(8, 4, generator=torch.Generator().manual_seed(1)))
    labels = torch.tensor([0, 3, 4])
    sampling = SamplingConfig(cfg=cfg, cfg_schedule="linear", temperature=1.0, diffusion_steps=4)

    def draw(recompute: bool) -> torch.Tensor:
        return sample_causal(model, labels, sampling, torch.Generator().manual_seed(7), recompute=recompute)

    cached, recomputed = draw(False), draw(True)
    assert cached.shape == (3, 4, 6, 6)
    torch.testing.assert_close(cached, recomputed, atol=1e-5, rtol=1e-5)


def test_seeded_sampling_repeats_and_every_step_draws_one_token():
    model, labels = causal_model(), torch.tensor([0, 1])
    seen = []

    def record(step, tokens, mask):
        seen.append(int(mask[0].sum()))

    def draw(seed, **kwargs):
        return sample_latents(model, labels, diffusion_steps=3, generator=torch.Generator().manual_seed(seed), **kwargs)

    first = draw(0, on_step=record)
    assert seen == list(range(8, -1, -1))  # 9 steps, one token each, whatever num_iter says
    assert torch.equal(first, draw(0)) and not torch.equal(first, draw(1))
    with pytest.raises(ValueError, match="needs a bidirectional model"):
        sample_latents(model, labels, known_tokens=torch.zeros(2, 9, 16), known=torch.zeros(2, 9, dtype=torch.bool))


@pytest.mark.slow
@pytest.mark.parametrize(
    "order, head, steps",
    # A random order with the diffusion head needs ~2500 steps here (about 12 s), so it is left out.
    [("raster", "diffusion", 700), ("raster", "categorical", 300), ("random", "categorical", 300)],
)
def test_a_causal_model_overfits_two_images_and_samples_them_back(order, head, steps):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    codebook = torch.randn(8, 4, generator=g)
    if head == "categorical":  # images made of codes, so that the categorical head can hold them exactly
        latents = codebook[torch.randint(0, 8, (2, 6, 6), generator=g)].permute(0, 3, 1, 2)  # (2, 4, 6, 6)
        overrides = {"head": CategoricalConfig(width=64, codebook_size=8)}
    else:
        latents = torch.randn(2, 4, 6, 6, generator=g)
        overrides = {}
    model = MARGenerator(
        replace(CAUSAL, order=order, label_drop_prob=0.0, **overrides), codebook if overrides else None
    )
    labels = torch.tensor([0, 1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(latents, labels, generator=g).backward()
        optimizer.step()
    model.eval()
    drawn = sample_latents(
        model,
        labels,
        cfg=1.0,
        temperature=0.0,
        head_sampler="ddim",
        diffusion_steps=20,
        generator=torch.Generator().manual_seed(3),
    )
    error = (drawn - latents).abs().mean() / latents.abs().mean()
    assert error < 0.25, error


def test_a_checkpoint_keeps_attention_and_order_and_older_configs_load_as_bidirectional_random(tmp_path):
    model = causal_model(order="raster")
    tokenizer = KLTokenizer(small_autoencoder(4, 2, 16)).eval()
    path = save_weights(tmp_path / "weights.safetensors", model, tokenizer, list("abcde"), 12, step=3)
    loaded = load_checkpoint(path).model
    assert (loaded.config.attention, loaded.config.order) == ("causal", "raster")
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    older = {k: v for k, v in TINY.to_dict().items() if k not in ("attention", "order")}
    assert (MARConfig.from_dict(older).attention, MARConfig.from_dict(older).order) == ("bidirectional", "random")
    with pytest.raises(ValueError, match="raster order is for the causal model"):
        replace(TINY, order="raster")


@pytest.mark.slow
def test_train_py_trains_resumes_samples_and_exports_a_causal_raster_model(tmp_path, capsys):
    from mar.cli import sample, train

    from .toy import TOY

    run = [
        "--attention",
        "causal",
        "--order",
        "raster",
        "--output",
        str(tmp_path / "run"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--quality",
        "off",
    ]
    train.main(TOY + run)
    assert "causal attention in raster order" in capsys.readouterr().out
    config = load_checkpoint(tmp_path / "run").model.config
    assert (config.attention, config.order) == ("causal", "raster")
    epochs = TOY.index("--epochs") + 1
    train.main(TOY[:epochs] + ["2"] + TOY[epochs + 1 :] + run + ["--resume"])
    assert "resuming at step 5" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # another attention than the run's is refused, naming it
        train.main(TOY + run[4:] + ["--resume"])  # bidirectional, random: the defaults
    assert "attention: 'bidirectional' != 'causal'" in capsys.readouterr().err
    sample.main(
        [
            "--checkpoint",
            str(tmp_path / "run"),
            "--per-class",
            "2",
            "--diffusion-steps",
            "3",
            "--out",
            str(tmp_path / "grid.png"),
        ]
    )
    assert (tmp_path / "grid.png").is_file()
    from mar import open_checkpoint
    from mar.cli import export_hub, sample_at_scale

    export_hub.main(["--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "hub")])
    hub = open_checkpoint(str(tmp_path / "hub")).model
    assert (hub.config.attention, hub.config.order) == ("causal", "raster")
    sample_at_scale.main(
        [
            "--checkpoint",
            str(tmp_path / "hub"),
            "--num-images",
            "10",
            "--diffusion-steps",
            "2",
            "--out",
            str(tmp_path / "set"),
            "--no-progress",
        ]
    )
    assert len(list((tmp_path / "set").rglob("*.png"))) == 10


def test_raster_order_with_bidirectional_attention_is_one_line_before_any_work(tmp_path, capsys):
    from mar.cli import train

    with pytest.raises(SystemExit) as stopped:
        train.main(["--order", "raster", "--output", str(tmp_path / "run")])
    message = capsys.readouterr().err.strip()
    assert stopped.value.code == 2 and message.startswith("error: --order raster") and "\n" not in message
    assert not (tmp_path / "run").exists()
