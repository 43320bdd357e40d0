"""The generator: named sizes, gradients, overfitting, sampling invariants and checkpoints."""

from dataclasses import replace

import pytest
import torch

from mar import NAMED_SIZES, MARConfig, MARGenerator, named_config, sample_latents
from mar.model.tokens import patchify, unpatchify

from .tiny import tiny_model, untrained_but_responsive


@pytest.mark.parametrize("name, millions", [("mar-base", 208), ("mar-large", 479), ("mar-huge", 943)])
def test_paper_sizes_have_the_paper_parameter_counts(name, millions):
    with torch.device("meta"):
        model = MARGenerator(named_config(name))  # ImageNet 256 through a 16-channel stride-16 KL: 256 tokens
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(count - millions) / millions < 0.05, count


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NAMED_SIZES))
def test_every_named_size_runs_forward_and_backward_at_toy_data_sizes(name):
    # Widths and depths as named; the latent grid and classes shrunk so each runs on a CPU in seconds.
    config = named_config(name, num_classes=3, latent_channels=2, latent_size=2, patch_size=1, buffer_size=2).with_head(
        depth=1
    )
    if name != "mar-tiny":
        config = replace(config, encoder_depth=1, decoder_depth=1)
    model = MARGenerator(config)
    loss = model.loss(torch.randn(2, 2, 2, 2), torch.tensor([0, 2]), torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    loss.backward()


def test_patchify_round_trip_and_layout():
    latents = torch.randn(3, 4, 8, 8)
    tokens = patchify(latents, 2)
    assert tokens.shape == (3, 16, 16)
    assert torch.equal(tokens[0, 1], latents[0, :, 0:2, 2:4].reshape(-1))  # second token: rows 0-1, cols 2-3
    assert torch.equal(unpatchify(tokens, 2, 4), latents)


def test_every_parameter_receives_a_gradient():
    model = tiny_model(label_drop_prob=0.5)  # so the null class is drawn too
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    latents, labels = torch.randn(16, 4, 8, 8), torch.arange(16) % 5
    # The zero-initialised output and adaLN layers block gradients upstream: the first step moves the output
    # layer, the second the modulation, and from the third on the gradient reaches the backbone.
    for _ in range(3):
        optimizer.zero_grad()
        model.loss(latents, labels, generator).backward()
        optimizer.step()
    silent = [name for name, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not silent, silent


@pytest.mark.slow
def test_overfits_a_single_batch():
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    latents, labels = torch.randn(8, 4, 8, 8, generator=torch.Generator().manual_seed(1)), torch.arange(8) % 5

    def mean_loss(seed: int) -> float:
        with torch.no_grad():
            return (
                sum(model.loss(latents, labels, torch.Generator().manual_seed(seed + i)).item() for i in range(10)) / 10
            )

    before = mean_loss(100)
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        loss = model.loss(latents, labels, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = mean_loss(100)
    assert after < before / 3, (before, after)


def test_encoder_refuses_masks_with_unequal_counts():
    model = tiny_model()
    mask = torch.zeros(2, 16)
    mask[0, :3] = 1
    with pytest.raises(ValueError, match="same number"):
        model.backbone(torch.randn(2, 16, 16), torch.tensor([0, 1]), mask)


def test_sampler_draws_every_token_exactly_once(monkeypatch):
    model = tiny_model().eval()
    draws = []
    real_sample = model.head.sample

    def counting_sample(z, **kwargs):
        draws.append(z.shape[0])
        return real_sample(z, **kwargs)

    monkeypatch.setattr(model.head, "sample", counting_sample)
    for num_iter in (1, 7, 16):
        draws.clear()
        latents = sample_latents(
            model,
            torch.tensor([0, 1, 4]),
            num_iter=num_iter,
            diffusion_steps=2,
            generator=torch.Generator().manual_seed(0),
        )
        assert latents.shape == (3, 4, 8, 8)
        assert len(draws) == num_iter and min(draws) >= 3 and sum(draws) == 3 * 16
        assert torch.all(patchify(latents, 2).abs().sum(-1) > 0)  # no token left at its zero start


def test_sampler_positions_are_drawn_once_each():
    model = tiny_model().eval()
    masks = [torch.ones(2, 16, dtype=torch.bool)]
    sample_latents(
        model,
        torch.tensor([0, 1]),
        num_iter=5,
        diffusion_steps=2,
        generator=torch.Generator().manual_seed(0),
        on_step=lambda step, tokens, mask: masks.append(mask),
    )
    drawn = sum(before.int() - after.int() for before, after in zip(masks, masks[1:]))
    assert torch.equal(drawn, torch.ones(2, 16, dtype=torch.int))  # each position leaves the mask exactly once
    assert not masks[-1].any()


def test_seeded_sampling_repeats_and_cfg_one_skips_guidance(monkeypatch):
    model = untrained_but_responsive()
    labels = torch.tensor([0, 2, 4])

    def run(**kwargs):
        return sample_latents(
            model, labels, num_iter=4, diffusion_steps=5, generator=torch.Generator().manual_seed(7), **kwargs
        )

    base = run(cfg=1.0)
    assert torch.equal(base, run(cfg=1.0))
    assert torch.equal(base, run(cfg=1.0, cfg_schedule="constant"))
    assert not torch.equal(base, run(cfg=4.0))
    batches = []
    real_forward = model.backbone.at_positions
    monkeypatch.setattr(
        model.backbone, "at_positions", lambda *args: batches.append(len(args[1])) or real_forward(*args)
    )
    run(cfg=1.0, reuse="none")
    run(cfg=2.0, reuse="none")
    assert batches == [3] * 4 + [6] * 4  # guidance doubles the backbone batch with the null class
    batches.clear()
    run(cfg=2.0)
    assert batches == [4] + [6] * 3  # step 1 once per class (3) and for the null class


def test_sampler_rejects_class_ids_out_of_range():
    with pytest.raises(ValueError, match="class id 5 is out of range"):
        sample_latents(tiny_model(), torch.tensor([0, 5]), num_iter=2)


@pytest.mark.parametrize("head_sampler", ["ddpm", "ddim", "dpm++"])
def test_sampler_anneals_head_steps_and_passes_the_head_sampler(monkeypatch, head_sampler):
    model = untrained_but_responsive()
    calls = []
    real_sample = model.head.sample

    def recording_sample(z, **kwargs):
        calls.append((kwargs["num_steps"], kwargs["sampler"]))
        return real_sample(z, **kwargs)

    monkeypatch.setattr(model.head, "sample", recording_sample)

    def run(**kwargs):
        return sample_latents(
            model,
            torch.tensor([0, 3]),
            num_iter=4,
            cfg=2.0,
            head_sampler=head_sampler,
            generator=torch.Generator().manual_seed(3),
            **kwargs,
        )

    annealed = run(diffusion_steps=7, diffusion_steps_last=1)
    assert calls == [(7, head_sampler), (5, head_sampler), (3, head_sampler), (1, head_sampler)]
    assert torch.isfinite(annealed).all() and torch.equal(annealed, run(diffusion_steps=7, diffusion_steps_last=1))
    calls.clear()
    run(diffusion_steps=None, diffusion_steps_last=4)  # None: the first step takes the model's num_sampling_steps = 10
    assert [steps for steps, _ in calls] == [10, 8, 6, 4]
    calls.clear()
    run(diffusion_steps=3)  # no annealing: the same steps throughout
    assert [steps for steps, _ in calls] == [3] * 4


def test_sampler_rejects_an_unknown_head_sampler():
    with pytest.raises(ValueError, match="choose one of ddpm, ddim, dpm\\+\\+"):
        sample_latents(tiny_model(), torch.tensor([0]), num_iter=2, diffusion_steps=2, head_sampler="euler")


@pytest.mark.parametrize("head_sampler", ["ddpm", "ddim", "dpm++"])
def test_every_head_sampler_runs_under_bf16_autocast(head_sampler):
    model = untrained_but_responsive().eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        latents = sample_latents(
            model,
            torch.tensor([0, 3]),
            num_iter=2,
            diffusion_steps=3,
            cfg=2.0,
            head_sampler=head_sampler,
            generator=torch.Generator().manual_seed(0),
        )
    assert latents.dtype == torch.float32 and torch.isfinite(latents).all()


def test_completion_keeps_known_tokens_and_draws_each_other_one_once():
    model = untrained_but_responsive()
    labels = torch.tensor([0, 2, 4])
    real = torch.randn(3, 16, 16)  # (b, l, c): 16 tokens of 4 channels x 2 x 2
    known = torch.zeros(3, 16, dtype=torch.bool)
    for row, positions in enumerate(([0, 5, 9, 15], [1, 2, 3, 4], [7, 8, 10, 12])):
        known[row, positions] = True
    steps = []
    latents = sample_latents(
        model,
        labels,
        num_iter=6,
        diffusion_steps=3,
        generator=torch.Generator().manual_seed(3),
        known_tokens=real,
        known=known,
        on_step=lambda k, tokens, mask: steps.append(mask),
    )
    tokens = patchify(latents, 2)
    assert torch.equal(tokens[known], real[known])  # given tokens come back exactly
    assert torch.all(tokens[~known].abs().sum(-1) > 0) and not torch.allclose(tokens[~known], real[~known])
    assert len(steps) == 6 and not steps[-1].any()
    assert all(not (mask & known).any() for mask in steps)  # known positions are never masked
    assert [int(m[0].sum()) for m in steps] == [int(m[1].sum()) for m in steps]  # the same count drawn in every row


def test_completion_with_nothing_known_is_plain_sampling_and_unequal_counts_are_refused():
    model = untrained_but_responsive()
    labels = torch.tensor([1, 3])
    plain = sample_latents(
        model, labels, num_iter=4, diffusion_steps=3, cfg=2.0, generator=torch.Generator().manual_seed(5)
    )
    nothing = torch.zeros(2, 16, dtype=torch.bool)
    same = sample_latents(
        model,
        labels,
        num_iter=4,
        diffusion_steps=3,
        cfg=2.0,
        generator=torch.Generator().manual_seed(5),
        known_tokens=torch.randn(2, 16, 16),
        known=nothing,
    )
    assert torch.equal(plain, same)
    uneven = nothing.clone()
    uneven[0, 0] = True
    with pytest.raises(ValueError, match="same number of tokens to draw"):
        sample_latents(model, labels, num_iter=2, known_tokens=torch.randn(2, 16, 16), known=uneven)


def test_cfg_refresh_runs_the_unconditional_half_every_n_steps_and_is_exact_where_it_runs(monkeypatch):
    model = untrained_but_responsive()
    labels = torch.tensor([0, 2, 4])
    seen = {}

    def run(cfg_refresh, cfg=3.0):
        steps = []
        out = sample_latents(
            model,
            labels,
            num_iter=6,
            diffusion_steps=5,
            cfg=cfg,
            cfg_refresh=cfg_refresh,
            reuse="none",
            generator=torch.Generator().manual_seed(3),
            on_step=lambda step, tokens, mask: steps.append(tokens),
        )
        seen[cfg_refresh, cfg] = steps
        return out

    batches = []
    real_forward = model.backbone.at_positions
    monkeypatch.setattr(
        model.backbone, "at_positions", lambda *args: batches.append(len(args[1])) or real_forward(*args)
    )
    exact, every_second = run(1), run(2)
    assert batches[:6] == [6] * 6 and batches[6:] == [6, 3] * 3  # the null-class half at steps 1, 3, 5 only
    # Step 1 runs both halves: the draws of exact guidance, up to the rounding of a last block run on more rows.
    torch.testing.assert_close(seen[2, 3.0][0], seen[1, 3.0][0], atol=1e-5, rtol=1e-5)
    assert not torch.equal(exact, every_second)  # later steps approximate the unconditional z
    assert torch.equal(run(1, cfg=1.0), run(4, cfg=1.0))  # without guidance there is nothing to refresh
    with pytest.raises(ValueError, match="cfg_refresh 0 must be at least 1"):
        run(0)


def test_the_flat_config_layout_of_older_checkpoints_loads_into_the_head_config():
    backbone = {k: v for k, v in named_config("mar-tiny").to_dict().items() if k not in ("head", "compat")}
    flat_head = {
        "head_width": 64,
        "head_depth": 2,
        "diffusion_batch_mul": 4,
        "num_sampling_steps": 10,
        "learn_sigma": True,
    }
    diffusion = MARConfig.from_dict(backbone | flat_head | {"head": "diffusion", "codebook_size": 0})
    assert diffusion == named_config("mar-tiny").with_head(width=64, depth=2, num_sampling_steps=10)
    categorical = MARConfig.from_dict(backbone | flat_head | {"head": "categorical", "codebook_size": 12})
    assert categorical == named_config("mar-tiny").with_head("categorical", width=64, codebook_size=12)
    assert MARConfig.from_dict(categorical.to_dict()) == categorical  # and the nested layout round-trips
    with pytest.raises(ValueError, match="head has fields this version does not know: depth"):
        MARConfig.from_dict(categorical.to_dict() | {"head": {"kind": "categorical", "depth": 3}})
