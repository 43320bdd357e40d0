"""The guided head (diffloss/guided_head.py): its distillation target, its start equal to the teacher, the sampling
path, its learning, its file and its commands."""

import copy

import pytest
import torch

from diffloss.guided_head import GuidedHead
from mar import sample_latents
from mar.cli import distill_head, export_hub, sample
from mar.interop.hub import open_checkpoint
from mar.sampling import loop
from mar.sampling.config import SamplingConfig
from mar.train.checkpoint import load_checkpoint, save_weights
from mar.train.distill_head import DistillSettings, distill, guided_error, teacher_draws
from mar.train.guided_head_file import guided_head_path, save_guided_head
from vae import KLTokenizer, small_autoencoder

from .host_sync import NoHostSync
from .tiny import tiny_model, untrained_but_responsive

LABELS = torch.tensor([0, 2, 2, 4, 1])


@pytest.fixture(scope="module")
def model():
    return untrained_but_responsive()


@pytest.fixture(scope="module")
def draws(model):
    return teacher_draws(model, 60, SamplingConfig(cfg=3.0, diffusion_steps=4), 30, torch.Generator().manual_seed(0))


def test_the_teacher_draws_are_what_its_loop_gives_the_head(model, draws):
    """60 images of 16 tokens, each drawn once; the unconditional z differs from the class's (exact guidance)."""
    assert draws.z.shape == draws.z_uncond.shape == (60 * 16, model.config.head.cond_channels)
    assert draws.tokens.shape == (60 * 16, model.config.token_dim)
    assert not torch.allclose(draws.z, draws.z_uncond)


def test_a_fresh_guided_head_is_the_teacher_unguided_at_every_scale(model, draws):
    """Zero weights for the null class's z and a zero guidance embedding: the teacher's eps_c, up to rounding."""
    student = GuidedHead.from_teacher(model.head).eval()
    x, t = torch.randn(40, 16), torch.randint(0, 1000, (40,))
    both = torch.cat([draws.z[:40], draws.z_uncond[:40]], dim=-1)
    for w in (1.0, 3.0, 9.0):
        guided = student.net(x, t, both, torch.full((40,), w))
        torch.testing.assert_close(guided, model.head.net(x, t, draws.z[:40]), atol=1e-6, rtol=1e-6)


def test_the_distillation_target_is_the_guided_output(model, draws):
    """With z_uncond = z guidance changes nothing, so a fresh guided head has no loss (up to rounding); otherwise
    the loss is guidance's own size."""
    student = GuidedHead.from_teacher(model.head)
    z, z_uncond, tokens = draws.z[:64], draws.z_uncond[:64], draws.tokens[:64]
    assert student.distillation_loss(model.head, z, z, tokens, 5.0, torch.Generator().manual_seed(0)) < 1e-10
    assert student.distillation_loss(model.head, z, z_uncond, tokens, 5.0, torch.Generator().manual_seed(0)) > 1e-4


@pytest.mark.parametrize("attention", ["bidirectional", "causal"])
def test_sampling_with_a_fresh_guided_head_equals_unguided_sampling(attention):
    """A fresh guided head answers as the teacher without guidance, so the guided path draws the unguided samples
    (the class's z computed beside the null class's: equal up to rounding), with the same noise."""
    teacher = untrained_but_responsive() if attention == "bidirectional" else causal_model()
    student = GuidedHead.from_teacher(teacher.head).eval()
    settings = dict(num_iter=4, diffusion_steps=4)
    unguided = sample_latents(teacher, LABELS, cfg=1.0, generator=torch.Generator().manual_seed(5), **settings)
    guided = sample_latents(
        teacher,
        LABELS,
        SamplingConfig(cfg=4.0, guided_head=True, **settings),
        head=student,
        generator=torch.Generator().manual_seed(5),
    )
    torch.testing.assert_close(guided, unguided, atol=1e-4, rtol=1e-4)


def causal_model():
    model = tiny_model(attention="causal")
    with torch.no_grad():
        for p in model.parameters():
            if not torch.any(p != 0):
                p.normal_(std=0.05)
    return model.eval()


def test_guided_head_settings(model):
    """Without guided_head a given guided head is ignored, and so it is at cfg 1; guided_head without one is an error
    naming the fix."""
    student = GuidedHead.from_teacher(model.head).eval()
    seeded = dict(cfg=3.0, num_iter=2, diffusion_steps=3)
    ignored = sample_latents(model, LABELS, head=student, generator=torch.Generator().manual_seed(1), **seeded)
    plain = sample_latents(model, LABELS, generator=torch.Generator().manual_seed(1), **seeded)
    assert torch.equal(ignored, plain)
    unguided = dict(seeded, cfg=1.0)
    assert torch.equal(
        sample_latents(
            model, LABELS, head=student, guided_head=True, generator=torch.Generator().manual_seed(1), **unguided
        ),
        sample_latents(model, LABELS, generator=torch.Generator().manual_seed(1), **unguided),
    )
    with pytest.raises(ValueError, match="mar distill-head"):
        sample_latents(model, LABELS, guided_head=True, **seeded)


def test_the_guided_loop_reads_no_tensor_on_the_host(model, monkeypatch):
    student = GuidedHead.from_teacher(model.head).eval()
    sampling = SamplingConfig(cfg=3.0, cfg_schedule="linear", num_iter=4, diffusion_steps=4, guided_head=True)
    sample_latents(model, LABELS, sampling, head=student)  # the head builds its chain on first use
    real = loop.draw_steps

    def guarded(*args, **kwargs):
        with NoHostSync():
            return real(*args, **kwargs)

    monkeypatch.setattr(loop, "draw_steps", guarded)
    sample_latents(model, LABELS, sampling, head=student)


def test_distillation_learns_most_of_guidance_on_held_out_rows(model, draws):
    """On rows it did not train on, the guided head's error to the teacher's guided noise falls well below what
    guidance adds (the error of the unguided noise)."""
    train, held_out = draws.split(160)
    student, steps = distill(model, train, DistillSettings(steps=400, batch_size=256), torch.Generator().manual_seed(0))
    assert steps == 400
    for cfg in (2.0, 4.0):
        error, unguided = guided_error(student, model, held_out, cfg, torch.Generator().manual_seed(1))
        assert error < 0.5 * unguided, (cfg, error, unguided)


@pytest.fixture
def saved(tmp_path, model):
    torch.manual_seed(0)
    tokenizer = KLTokenizer(small_autoencoder(latent_channels=4, stride=4, width=32)).eval()
    path = tmp_path / "step" / "weights.safetensors"
    return save_weights(path, model, tokenizer, list("abcde"), 32, step=3, ema=copy.deepcopy(model))


def test_the_guided_head_file_round_trips_and_refuses_another_teacher(saved, model, draws):
    assert load_checkpoint(saved).guided_head is None
    student, _ = distill(model, draws, DistillSettings(steps=5, batch_size=64), torch.Generator().manual_seed(0))
    save_guided_head(saved, student, model.head, {"steps": 5})
    loaded = load_checkpoint(saved).guided_head
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), student.state_dict().values()))
    other = untrained_but_responsive(seed=9)
    save_weights(saved, other, load_checkpoint(saved).tokenizer, list("abcde"), 32, step=4, ema=copy.deepcopy(other))
    with pytest.raises(ValueError, match="guided-head.safetensors was distilled from other head weights"):
        load_checkpoint(saved)
    guided_head_path(saved).write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="guided-head.safetensors is damaged"):
        load_checkpoint(saved)


def test_the_commands_draw_with_the_guided_head_when_asked_and_fail_in_one_line_without_it(saved, capsys):
    """sample.py --guided-head needs the file (one line naming the fix); mar distill-head writes it and refuses to
    replace it without --overwrite; then sample.py draws with it."""
    common = ["--checkpoint", str(saved.parent), "--per-class", "1", "--num-iter", "2", "--diffusion-steps", "3"]
    with pytest.raises(SystemExit):
        sample.main([*common, "--guided-head"])
    assert "error: --guided-head: the checkpoint has none; write one with `mar distill-head" in capsys.readouterr().err
    distill_head.main(
        ["--checkpoint", str(saved.parent), "--images", "20", "--steps", "20", "--batch-size", "64", "--cfg", "3"]
    )
    assert guided_head_path(saved).is_file()
    assert "of the teacher (cfg 3, temperature 0.3, K 16)" in capsys.readouterr().out  # --cfg sets the draws' scale
    with pytest.raises(SystemExit):
        distill_head.main(["--checkpoint", str(saved.parent), "--steps", "1"])
    assert "exists; pass --overwrite" in capsys.readouterr().err
    sample.main(common)
    sample.main([*common, "--guided-head"])
    with pytest.raises(SystemExit):
        sample.main([*common, "--guided-head", "--no-ema"])
    assert "goes with the EMA weights it was distilled from; drop --no-ema" in capsys.readouterr().err
    assert len(list(saved.parent.glob("*-guided.png"))) == 1 and len(list(saved.parent.glob("*.png"))) == 2


def test_a_hub_folder_carries_the_guided_head(saved, model, draws, tmp_path):
    student, _ = distill(model, draws, DistillSettings(steps=5, batch_size=64), torch.Generator().manual_seed(0))
    save_guided_head(saved, student, model.head, {"steps": 5})
    export_hub.main(["--checkpoint", str(saved.parent), "--out", str(tmp_path / "hub")])
    loaded = open_checkpoint(str(tmp_path / "hub")).guided_head
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), student.state_dict().values()))
