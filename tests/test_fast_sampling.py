"""The sampler's speed-ups: each exact saving draws the samples of the plain computation (fp32, within 1e-4), the
token cache with refresh 1 is exact and otherwise repeats under a seed, and no step of the loop reads a tensor on the
host."""

import pytest
import torch

from mar import sample_latents
from mar.cli import sample
from mar.cli.common import sampling_options
from mar.model.masking import unmasking_schedule
from mar.model.rows import positions_of
from mar.sampling import loop, token_cache
from mar.sampling.config import PRESETS, REUSE, SamplingConfig

from .host_sync import HostSync, NoHostSync
from .tiny import untrained_but_responsive

LABELS = torch.tensor([0, 2, 2, 4, 0])  # repeated classes: step 1 runs 3 classes, not 5 images
TOLERANCE = dict(atol=1e-4, rtol=1e-4)  # fp32: the savings regroup the same sums (other matrix shapes)


@pytest.fixture(scope="module")
def model():
    return untrained_but_responsive()


def known_half(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Known tokens (b, 16, 16) at 6 random positions per row (b, 16) for completion: 10 left to draw."""
    g = torch.Generator().manual_seed(seed)
    picks = torch.rand(len(LABELS), 16, generator=g).argsort(dim=1)[:, :6]
    known = torch.zeros(len(LABELS), 16, dtype=torch.bool).scatter_(1, picks, True)
    return torch.randn(len(LABELS), 16, 16, generator=g), known


def draw(model, num_iter: int, completion: bool = False, seed: int = 3, **settings) -> torch.Tensor:
    known_tokens, known = known_half() if completion else (None, None)
    return sample_latents(
        model,
        LABELS,
        num_iter=min(num_iter, 10) if completion else num_iter,
        diffusion_steps=4,
        generator=torch.Generator().manual_seed(seed),
        known_tokens=known_tokens,
        known=known,
        **settings,
    )


GUIDANCE = [
    dict(cfg=1.0),
    dict(cfg=3.0, cfg_schedule="constant"),
    dict(cfg=3.0, cfg_schedule="linear"),
    dict(cfg=3.0, cfg_refresh=2),
]


@pytest.mark.parametrize("num_iter", [1, 2, 16])
@pytest.mark.parametrize("completion", [False, True], ids=["fresh", "completion"])
def test_each_exact_saving_draws_the_samples_of_the_plain_computation(model, num_iter, completion):
    for guidance in GUIDANCE:
        plain = draw(model, num_iter, completion, reuse="none", **guidance)
        for reuse in [*REUSE, "all"]:
            saved = draw(model, num_iter, completion, reuse=reuse, **guidance)
            torch.testing.assert_close(saved, plain, **TOLERANCE, msg=lambda text: f"{reuse}, {guidance}: {text}")


def test_the_savings_do_less_work(model, monkeypatch):
    projected = []
    hook = model.backbone.token_proj.register_forward_hook(lambda module, args, out: projected.append(len(out)))
    try:
        draw(model, 4, cfg=3.0, reuse="none")
        plain, projected[:] = list(projected), []
        draw(model, 4, cfg=3.0, reuse="halves")
        assert plain == [10] * 4 and projected == [5] * 4  # the tokens projected once for both guidance halves
    finally:
        hook.remove()
    batches = []
    real = model.backbone.at_positions
    monkeypatch.setattr(model.backbone, "at_positions", lambda *args: batches.append(len(args[1])) or real(*args))
    draw(model, 4, cfg=3.0, reuse="first-step")
    assert batches == [4, 10, 10, 10]  # step 1: classes 0, 2, 4 and the null class


@pytest.mark.parametrize("guidance", GUIDANCE, ids=["unguided", "constant", "linear", "refresh-2"])
@pytest.mark.parametrize("completion", [False, True], ids=["fresh", "completion"])
@pytest.mark.parametrize("cache_buffer", [False, True], ids=["fresh-buffer", "kept-buffer"])
def test_the_token_cache_refreshed_every_step_is_exact(model, guidance, completion, cache_buffer):
    plain = draw(model, 8, completion, reuse="none", **guidance)
    cached = draw(model, 8, completion, token_cache=1, cache_buffer=cache_buffer, **guidance)
    torch.testing.assert_close(cached, plain, **TOLERANCE)


@pytest.mark.parametrize("guidance", GUIDANCE, ids=["unguided", "constant", "linear", "refresh-2"])
@pytest.mark.parametrize("cache_buffer", [False, True], ids=["fresh-buffer", "kept-buffer"])
def test_the_first_step_saving_fills_the_token_cache_as_the_plain_first_step_does(model, guidance, cache_buffer):
    settings = dict(token_cache=4, cache_buffer=cache_buffer, **guidance)
    plain = draw(model, 16, reuse="none", **settings)  # step 1 refreshes the cache over every image
    saved = draw(model, 16, reuse="first-step", **settings)  # step 1 once per class, its rows copied per image
    torch.testing.assert_close(saved, plain, **TOLERANCE)


def refreshes(model, monkeypatch, num_iter: int, **settings) -> list[int]:
    """The visible tokens at each of a draw's full refreshes of the token cache."""
    seen = []
    real = token_cache.TokenCache.full
    monkeypatch.setattr(
        token_cache.TokenCache, "full", lambda self, *args: seen.append(args[2].shape[1]) or real(self, *args)
    )
    draw(model, num_iter, **settings)
    monkeypatch.undo()
    return seen


def test_the_token_cache_refreshes_by_growth_where_the_context_is_new(model, monkeypatch):
    one_per_step = dict(token_cache=16, cfg=1.0)
    assert refreshes(model, monkeypatch, 16, **one_per_step) == [0]  # only step 1 by the interval
    assert refreshes(model, monkeypatch, 16, cache_growth=2.0, **one_per_step) == [0, 1, 2, 4, 8]
    assert refreshes(model, monkeypatch, 16, cache_growth=3.0, **one_per_step) == [0, 1, 3, 9]
    both = refreshes(model, monkeypatch, 16, cache_growth=3.0, token_cache=4, cfg=1.0)
    assert both == [0, 1, 3, 4, 8, 12]  # the interval's steps 1, 5, 9, 13 (0, 4, 8, 12 visible) and the growth's
    with pytest.raises(ValueError, match="cache_growth 0.5 must be 0 .off. or a factor of at least 1"):
        SamplingConfig(cache_growth=0.5)


@pytest.mark.parametrize("guidance", GUIDANCE, ids=["unguided", "constant", "linear", "refresh-2"])
@pytest.mark.parametrize("completion", [False, True], ids=["fresh", "completion"])
def test_the_token_cache_refreshed_at_every_new_token_by_growth_1_is_exact(model, guidance, completion):
    plain = draw(model, 8, completion, reuse="none", **guidance)
    cached = draw(model, 8, completion, token_cache=16, cache_growth=1.0, cache_buffer=True, **guidance)
    torch.testing.assert_close(cached, plain, **TOLERANCE)


@pytest.mark.parametrize("cache_buffer", [False, True], ids=["fresh-buffer", "kept-buffer"])
def test_the_token_cache_between_refreshes_runs_only_the_new_rows_and_repeats(model, monkeypatch, cache_buffer):
    rows = []
    real = token_cache.block_with_cache
    monkeypatch.setattr(
        token_cache, "block_with_cache", lambda block, x, *args: rows.append(x.shape[1]) or real(block, x, *args)
    )
    settings = dict(token_cache=4, cache_buffer=cache_buffer, cfg=1.0, reuse="none")
    cached = draw(model, 4, **settings)
    n, blocks = model.config.buffer_size, 2  # encoder and decoder blocks each
    local = 0 if cache_buffer else n  # the buffer's rows, run at a step between refreshes unless they are kept
    remaining = [16, *unmasking_schedule(16, 4)]
    drawn = [before - after for before, after in zip(remaining, remaining[1:])]  # per step
    full = 2 * blocks - 1  # a refresh runs its last decoder block through block_at_rows: outputs where z is wanted
    assert len(rows) == full + 3 * 2 * blocks
    encoder = [rows[0]] + [rows[full + step * 2 * blocks] for step in range(3)]
    decoder = [rows[blocks]] + [rows[full + step * 2 * blocks + blocks] for step in range(3)]
    assert encoder == [n + 0] + [local + drawn[k - 1] for k in (1, 2, 3)]  # step 1 refreshes (nothing visible yet)
    assert decoder == [n + 16] + [local + drawn[k - 1] + drawn[k] for k in (1, 2, 3)]
    assert torch.equal(cached, draw(model, 4, **settings))
    exact = draw(model, 4, cfg=1.0, reuse="none")
    assert not torch.allclose(cached, exact, **TOLERANCE)  # stale rows between refreshes: an approximation
    if cache_buffer:
        fresh = draw(model, 4, **(settings | {"cache_buffer": False}))
        assert not torch.allclose(cached, fresh, **TOLERANCE)  # the kept buffer is a further approximation


@pytest.mark.parametrize("head_sampler", ["ddpm", "ddim", "dpm++"])
@pytest.mark.parametrize(
    "settings",
    [
        dict(cfg=1.0),
        dict(cfg=3.0, cfg_schedule="linear"),
        dict(cfg=3.0, cfg_refresh=2),
        dict(cfg=3.0, token_cache=2),
        dict(cfg=3.0, token_cache=2, cache_buffer=True),
    ],
    ids=["unguided", "guided", "cfg-refresh", "token-cache", "kept-buffer"],
)
@pytest.mark.parametrize("completion", [False, True], ids=["fresh", "completion"])
def test_no_step_of_the_loop_reads_a_tensor_on_the_host(model, monkeypatch, head_sampler, settings, completion):
    draw(model, 4, completion, head_sampler=head_sampler, **settings)  # the head builds its chain on first use
    real = loop.draw_steps

    def guarded(*args, **kwargs):
        with NoHostSync():
            return real(*args, **kwargs)

    monkeypatch.setattr(loop, "draw_steps", guarded)
    draw(model, 4, completion, head_sampler=head_sampler, **settings)


def test_the_host_read_guard_catches_what_the_loop_used_to_do():
    tokens, mask = torch.randn(2, 16, 4), torch.rand(2, 16) > 0.5
    for read in (lambda: tokens[mask], lambda: int(mask[0].sum()), lambda: bool(mask.any()), lambda: mask.nonzero()):
        with pytest.raises(HostSync), NoHostSync():
            read()
    with NoHostSync():
        positions_of(torch.ones(2, 16, dtype=torch.bool), 16)  # by index: allowed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA's own synchronisation check needs a GPU")
def test_no_step_synchronises_with_the_gpu(monkeypatch):
    model = untrained_but_responsive().cuda()
    real = loop.draw_steps

    def guarded(*args, **kwargs):
        torch.cuda.set_sync_debug_mode("error")
        try:
            return real(*args, **kwargs)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    settings = dict(num_iter=4, diffusion_steps=4, cfg=3.0, token_cache=2)
    sample_latents(model, LABELS.cuda(), **settings)  # the head builds its chain on first use
    monkeypatch.setattr(loop, "draw_steps", guarded)
    sample_latents(model, LABELS.cuda(), **settings)


def test_the_fast_preset_sets_only_the_fields_left_at_their_defaults():
    parser = sample.build_parser()
    fast = sampling_options(parser.parse_args(["--checkpoint", "x", "--fast"]))
    assert fast == SamplingConfig(**PRESETS["fast"]) == SamplingConfig().with_preset("fast")
    after = sampling_options(parser.parse_args(["--checkpoint", "x", "--fast", "--token-cache", "2"]))
    before = sampling_options(parser.parse_args(["--checkpoint", "x", "--cfg-refresh", "4", "--fast"]))
    assert after.token_cache == 2 and before.cfg_refresh == 4 and before.token_cache == PRESETS["fast"]["token_cache"]
    assert SamplingConfig(diffusion_steps=50).with_preset("fast").diffusion_steps == 50
    with pytest.raises(ValueError, match="unknown preset 'quick'"):
        SamplingConfig().with_preset("quick")
