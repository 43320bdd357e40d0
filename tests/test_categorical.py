"""The categorical head of the discrete baselines: cross-entropy that can overfit, softmax sampling, guidance."""

import torch

from mar.model.categorical import CategoricalConfig, CategoricalHead

CODEBOOK = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))


def head(seed: int = 0, groups: int = 4) -> CategoricalHead:
    torch.manual_seed(seed)
    return CategoricalHead(CategoricalConfig(cond_channels=16, codes_per_token=groups, width=64), CODEBOOK)


def tokens_of(indices: torch.Tensor) -> torch.Tensor:
    return (
        CODEBOOK[indices].transpose(1, 2).flatten(1)
    )  # (n, g) -> (n, e * g), channels first as patchify lays tokens out


def test_target_vectors_map_back_to_their_indices():
    indices = torch.randint(0, 12, (50, 4), generator=torch.Generator().manual_seed(1))
    assert torch.equal(head().indices(tokens_of(indices)), indices)


def test_overfits_one_batch_and_greedy_sampling_returns_it():
    model = head()
    g = torch.Generator().manual_seed(2)
    z, indices = torch.randn(32, 16, generator=g), torch.randint(0, 12, (32, 4), generator=g)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(300):
        loss = model.loss(z, tokens_of(indices))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.01
    assert torch.equal(model.indices(model.sample(z, temperature=0)), indices)


def test_loss_counts_only_masked_tokens():
    model, z = head(), torch.randn(6, 16)
    targets = tokens_of(torch.randint(0, 12, (6, 4)))
    mask = torch.tensor([1.0, 0, 1, 0, 0, 1])
    assert torch.allclose(model.loss(z, targets, mask), model.loss(z[mask.bool()], targets[mask.bool()]))


def test_temperature_zero_is_greedy_and_low_temperature_approaches_it():
    model, z = head(), torch.randn(200, 16, generator=torch.Generator().manual_seed(3))
    greedy = model.indices(model.sample(z, temperature=0))
    assert torch.equal(greedy, model.logits(z).argmax(-1))
    agreement = {
        t: (model.indices(model.sample(z, temperature=t, generator=torch.Generator().manual_seed(4))) == greedy)
        .float()
        .mean()
        .item()
        for t in (1.0, 0.1, 1e-3)
    }
    assert agreement[1.0] < agreement[0.1] < agreement[1e-3] and agreement[1e-3] > 0.98


def test_draws_follow_the_tempered_softmax():
    model = head(groups=1)
    z = torch.randn(1, 16, generator=torch.Generator().manual_seed(5)).expand(20000, 16)
    for temperature in (0.5, 1.0, 2.0):
        picks = model.indices(model.sample(z, temperature=temperature, generator=torch.Generator().manual_seed(6)))
        frequencies = torch.bincount(picks.flatten(), minlength=12).float() / picks.numel()
        expected = torch.softmax(model.logits(z[:1])[0, 0] / temperature, dim=-1)
        assert (frequencies - expected).abs().max() < 0.015


def test_guidance_at_scale_one_equals_unguided_sampling():
    model = head()
    z, z_uncond = torch.randn(40, 16), torch.randn(40, 16)
    guided = model.sample(z, cfg=1.0, z_uncond=z_uncond, generator=torch.Generator().manual_seed(7))
    assert torch.equal(guided, model.sample(z, generator=torch.Generator().manual_seed(7)))
    assert not torch.equal(
        model.sample(z, cfg=3.0, z_uncond=z_uncond, generator=torch.Generator().manual_seed(7)), guided
    )


def test_indices_follow_the_patch_layout_of_the_generator_tokens():
    from einops import rearrange

    from mar.model.tokens import patchify

    indices = torch.randint(0, 12, (2, 4, 4), generator=torch.Generator().manual_seed(8))  # (b, h, w)
    latents = CODEBOOK[indices].permute(0, 3, 1, 2)  # (b, e, h, w)
    tokens = patchify(latents, 2).flatten(0, 1)  # (b l, e p p)
    expected = rearrange(indices, "b (h p1) (w p2) -> (b h w) (p1 p2)", p1=2, p2=2)
    assert torch.equal(head().indices(tokens), expected)
