"""Orders, the mask-ratio law, the training mask, the unmasking and head-step schedules: exact invariants."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from diffloss import DiffLossConfig
from mar.model.masking import (
    annealed_steps,
    cfg_at,
    draw_mask_ratio,
    mask_from_orders,
    num_masked_for_ratio,
    random_orders,
    unmasking_schedule,
)


def test_orders_are_permutations_and_seeded():
    orders = random_orders(32, 50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(orders.sort(dim=1).values, torch.arange(50).expand(32, 50))
    assert torch.equal(orders, random_orders(32, 50, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(orders[0], orders[1])


@pytest.mark.slow
def test_mask_ratio_follows_the_truncated_normal():
    generator = torch.Generator().manual_seed(0)
    draws = np.array([draw_mask_ratio(generator) for _ in range(4000)])
    assert draws.min() >= 0.7 and draws.max() <= 1.0
    law = stats.truncnorm((0.7 - 1.0) / 0.25, 0.0, loc=1.0, scale=0.25)
    assert abs(draws.mean() - law.mean()) < 0.005
    assert stats.kstest(draws, law.cdf).pvalue > 0.01


@pytest.mark.parametrize("seq_len", [16, 64, 256])
def test_training_mask_count_matches_the_ratio_in_every_sample(seq_len):
    from mar import MARGenerator, named_config

    model = MARGenerator(
        named_config(
            "mar-tiny",
            num_classes=10,
            latent_channels=4,
            latent_size=int(math.sqrt(seq_len)),
            patch_size=1,
            width=32,
            num_heads=2,
            encoder_depth=1,
            decoder_depth=1,
            head=DiffLossConfig(width=16, depth=1),
        )
    )
    for seed in range(5):
        ratio = draw_mask_ratio(torch.Generator().manual_seed(seed))
        mask = model.training_mask(8, "cpu", torch.Generator().manual_seed(seed))
        counts = mask.sum(dim=1)
        assert torch.all(counts == math.ceil(seq_len * ratio))


def test_mask_from_orders_masks_the_first_positions_of_each_order():
    orders = torch.tensor([[3, 0, 2, 1], [1, 2, 3, 0]])
    assert torch.equal(mask_from_orders(orders, 2), torch.tensor([[1.0, 0, 0, 1], [0, 1, 1, 0]]))


def test_num_masked_is_at_least_one_and_at_most_all():
    assert num_masked_for_ratio(0.0, 16) == 1
    assert num_masked_for_ratio(1.0, 16) == 16
    assert num_masked_for_ratio(0.71, 16) == 12


@pytest.mark.parametrize("seq_len", [1, 16, 64, 256])
def test_schedule_unmasks_every_token_once_for_any_k(seq_len):
    for num_steps in sorted({1, min(2, seq_len), max(1, seq_len // 2), max(1, seq_len - 1), seq_len}):
        remaining = unmasking_schedule(seq_len, num_steps)
        assert len(remaining) == num_steps and remaining[-1] == 0
        drawn = np.diff([seq_len] + remaining) * -1
        assert drawn.min() >= 1 and drawn.sum() == seq_len


def test_schedule_follows_the_cosine_when_steps_are_few():
    assert unmasking_schedule(256, 4) == [math.floor(256 * math.cos(math.pi / 2 * k / 4)) for k in (1, 2, 3)] + [0]


def test_schedule_rejects_k_out_of_range():
    with pytest.raises(ValueError, match="K=17"):
        unmasking_schedule(16, 17)


def test_cfg_schedules():
    assert cfg_at(4.0, "constant", 0.25) == 4.0
    assert cfg_at(4.0, "linear", 0.0) == 1.0 and cfg_at(4.0, "linear", 1.0) == 4.0
    assert cfg_at(1.0, "linear", 0.5) == 1.0
    with pytest.raises(ValueError, match="cosine"):
        cfg_at(2.0, "cosine", 0.5)


def test_annealed_head_steps_fall_linearly_and_round_half_up():
    assert annealed_steps(50, 10, 5) == [50, 40, 30, 20, 10]
    assert annealed_steps(50, 10, 4) == [50, 37, 23, 10]  # 36.67, 23.33
    assert annealed_steps(50, 11, 3) == [50, 31, 11]  # 30.5 rounds up, not to even
    assert annealed_steps(4, 1, 7) == [4, 4, 3, 3, 2, 2, 1]  # 3.5, 2.5, 1.5 round up
    assert annealed_steps(10, 30, 3) == [10, 20, 30]  # rising works too
    assert annealed_steps(25, 25, 4) == [25] * 4 and annealed_steps(25, 5, 1) == [25]
    assert min(annealed_steps(3, 1, 64)) == 1
    with pytest.raises(ValueError, match="at least 1"):
        annealed_steps(10, 0, 4)
