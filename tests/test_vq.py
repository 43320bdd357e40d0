"""Vector quantiser: nearest-code search, straight-through gradients, both codebook updates, dead-code restarts."""

import torch

from vae import DiscreteConfig, DiscreteTokenizer, VectorQuantizer, VQConfig, nearest_code


def test_nearest_code_equals_brute_force_search():
    g = torch.Generator().manual_seed(0)
    vectors, codebook = torch.randn(2000, 16, generator=g), torch.randn(300, 16, generator=g)
    brute = torch.stack([((codebook - v).pow(2).sum(1)).argmin() for v in vectors])  # one vector at a time
    assert torch.equal(nearest_code(vectors, codebook), brute)


def test_quantizer_outputs_codes_and_indices_of_the_nearest_entries():
    quantizer = VectorQuantizer(VQConfig(codebook_size=64, dim=4)).eval()
    latents = torch.randn(3, 4, 5, 6, generator=torch.Generator().manual_seed(1))
    out = quantizer(latents)
    flat = latents.permute(0, 2, 3, 1).reshape(-1, 4)
    assert torch.equal(out.indices.flatten(), torch.cdist(flat, quantizer.codebook).argmin(1))
    assert torch.allclose(out.codes, quantizer.lookup(out.indices), atol=1e-6)
    assert out.codes.shape == latents.shape and out.indices.shape == (3, 5, 6)


def test_gradients_reach_the_encoder_through_the_straight_through_estimator():
    tokenizer = DiscreteTokenizer(DiscreteConfig(kind="vq", stride=4, width=32, vq=VQConfig(codebook_size=32, dim=4)))
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    loss, _ = tokenizer.training_loss(images)
    loss.backward()
    assert tokenizer.encoder.conv_in.weight.grad.abs().sum() > 0
    assert tokenizer.quantizer.codebook.grad.abs().sum() > 0  # the codebook loss trains the codes


def test_ema_codes_move_to_the_mean_of_their_vectors():
    quantizer = VectorQuantizer(VQConfig(codebook_size=2, dim=2, update="ema", decay=0.9, dead_usage=0.0))
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
        quantizer.ema_sum.copy_(quantizer.codebook)
    target = torch.tensor([1.0, -1.0])
    latents = target[:, None, None] + 0.1 * torch.randn(8, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    for _ in range(100):
        quantizer(latents)
    assert torch.allclose(quantizer.codebook[0], latents.mean((0, 2, 3)), atol=1e-3)
    assert not quantizer.codebook.requires_grad


def test_unused_codes_restart_on_encoder_outputs():
    quantizer = VectorQuantizer(VQConfig(codebook_size=8, dim=2))
    with torch.no_grad():
        quantizer.codebook.fill_(1000.0)
        quantizer.codebook[0] = 0.0  # the only code within reach
    latents = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(4))
    quantizer(latents, generator=torch.Generator().manual_seed(5))
    vectors = latents.permute(0, 2, 3, 1).reshape(-1, 2)
    for code in quantizer.codebook[1:]:  # each restarted code is one of the batch's vectors
        assert (vectors - code).abs().sum(1).min() < 1e-6
    assert quantizer(latents).indices.unique().numel() > 1
