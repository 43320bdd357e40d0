"""The guidance scale and temperature chosen from the data after training, and how the sampling entry points use
recorded ones."""

import argparse

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

import mar.eval.guidance_choice as choice_module
from mar.cli import sample
from mar.cli.common import sampling_options
from mar.cli.train_report import chosen_guidance
from mar.eval.guidance_choice import CANDIDATES, OTHER_TEMPERATURE, choose_guidance
from mar.sampling.config import SamplingConfig
from mar.train.checkpoint import load_checkpoint, save_weights
from vae import KLTokenizer, small_autoencoder

from .tiny import untrained_but_responsive


def scripted(monkeypatch, figures: dict[float, tuple[float, float]], hot: tuple[float, float] = (0.0, 99.0)):
    """sample_quality returning (accuracy, FID) by guidance scale, and ``hot`` at OTHER_TEMPERATURE; the scales it
    was asked for at the run's temperature, in order."""
    asked = []

    def fake(judge, model, tokenizer, num_classes, count, sampling, seed, save_to=None):
        if sampling.temperature == OTHER_TEMPERATURE:
            accuracy, fid = hot
        else:
            asked.append(sampling.cfg)
            accuracy, fid = figures[sampling.cfg]
        return {"accuracy": accuracy, "fid": fid, "count": count}

    monkeypatch.setattr(choice_module, "sample_quality", fake)
    return asked


def choose(**kwargs):
    return choose_guidance(None, None, None, 10, SamplingConfig(temperature=0.7), count=40, seed=3, **kwargs)


@pytest.mark.parametrize(
    "hot, chosen",
    [
        ((0.955, 1.21), OTHER_TEMPERATURE),  # the photos' shape: more accurate and a lower FID at temperature 1
        ((0.940, 1.21), OTHER_TEMPERATURE),  # as accurate, lower FID
        ((0.930, 1.00), 0.7),  # a lower FID, but less accurate: the glyphs' shape
        ((0.990, 2.20), 0.7),  # more accurate, but a worse FID
    ],
)
def test_temperature_one_is_kept_only_where_it_is_as_accurate_and_no_worse_in_fid(monkeypatch, hot, chosen):
    scripted(monkeypatch, {2.0: (0.9, 2.5), 4.0: (0.94, 2.15)}, hot)
    choice = choose(candidates=(2.0, 4.0))
    assert (choice.cfg, choice.temperature) == (4.0, chosen)
    assert choice.at_other_temperature == {"accuracy": hot[0], "fid": hot[1], "count": 40}
    assert f"temperature {chosen:g}" in choice.reason


def test_a_given_temperature_or_temperature_one_is_not_tried_again(monkeypatch):
    asked = scripted(monkeypatch, {2.0: (0.9, 2.5)}, hot=(1.0, 0.0))
    assert choose(candidates=(2.0,), choose_temperature=False).temperature == 0.7 and asked == [2.0]
    one = choose_guidance(None, None, None, 10, SamplingConfig(temperature=1.0), 40, 3, candidates=(2.0,))
    assert one.temperature == 1.0 and one.at_other_temperature is None


def test_the_most_accurate_scale_within_the_fid_slack_is_chosen(monkeypatch):
    # the glyphs' shape (docs/results.md): accuracy and FID both best at 2
    glyphs = {2.0: (0.905, 2.45), 3.0: (0.867, 3.96), 4.0: (0.768, 6.1), 6.0: (0.66, 10.2), 8.0: (0.585, 13.2)}
    asked = scripted(monkeypatch, glyphs)
    chosen = choose()
    assert chosen.cfg == 2.0 and asked == list(CANDIDATES)
    assert chosen.scores[4.0] == {"accuracy": 0.768, "fid": 6.1, "count": 40}
    # the textures' shape: accuracy rises to 6 while FID stays flat
    scripted(
        monkeypatch,
        {2.0: (0.495, 19.7), 3.0: (0.585, 19.1), 4.0: (0.617, 19.6), 6.0: (0.647, 19.5), 8.0: (0.625, 20.4)},
    )
    assert choose().cfg == 6.0


def test_a_more_accurate_scale_whose_fid_is_far_worse_is_not_chosen_and_ties_go_lower(monkeypatch):
    scripted(monkeypatch, {2.0: (0.5, 10.0), 4.0: (0.6, 12.4), 8.0: (0.9, 12.6)})
    assert choose(candidates=(2.0, 4.0, 8.0)).cfg == 4.0  # 12.6 > 1.25 x 10
    scripted(monkeypatch, {2.0: (0.7, 10.0), 4.0: (0.7, 10.0)})
    assert choose(candidates=(2.0, 4.0)).cfg == 2.0


def test_the_candidates_are_sampled_with_the_runs_other_settings(monkeypatch):
    seen = []

    def fake(judge, model, tokenizer, num_classes, count, sampling, seed, save_to=None):
        seen.append((sampling.temperature, sampling.num_iter, count, seed))
        return {"accuracy": 0.5, "fid": 1.0, "count": count}

    monkeypatch.setattr(choice_module, "sample_quality", fake)
    choose()
    assert seen == [(0.7, 16, 40, 3)] * len(CANDIDATES) + [(OTHER_TEMPERATURE, 16, 40, 3)]


def test_a_given_cfg_or_no_judge_chooses_nothing():
    given = argparse.Namespace(cfg=3.0)
    assert chosen_guidance(given, object(), None, None, None) is None
    assert chosen_guidance(argparse.Namespace(cfg=None), None, None, None, None) is None


def test_sampling_uses_a_given_cfg_and_temperature_else_the_checkpoints_else_the_defaults():
    parsed = sample.parse_args(["--checkpoint", "run"])
    assert parsed.cfg is None and parsed.temperature is None
    default = SamplingConfig()
    for chosen in (None, {}):
        assert (sampling_options(parsed, chosen).cfg, sampling_options(parsed, chosen).temperature) == (
            default.cfg,
            default.temperature,
        )
    assert sampling_options(parsed, {"cfg": 6.0}) == SamplingConfig(cfg=6.0)  # a run recorded before temperatures
    assert sampling_options(parsed, {"cfg": 6.0, "temperature": 1.0}) == SamplingConfig(cfg=6.0, temperature=1.0)
    given = sample.parse_args(["--checkpoint", "run", "--cfg", "1.5"])
    assert sampling_options(given, {"cfg": 6.0, "temperature": 1.0}) == SamplingConfig(cfg=1.5, temperature=1.0)
    given = sample.parse_args(["--checkpoint", "run", "--temperature", "0.5"])
    assert sampling_options(given, {"cfg": 6.0, "temperature": 1.0}) == SamplingConfig(cfg=6.0, temperature=0.5)


@pytest.mark.parametrize(
    "entry", ['{"cfg": "strong"}', '{"cfg": -1}', '{"cfg": 2, "temperature": -1}', '{"cfg": 2, "steps": 1}', "[2]"]
)
def test_a_damaged_sampling_entry_is_refused_naming_the_file(tmp_path, entry):
    tokenizer = KLTokenizer(small_autoencoder(latent_channels=4, stride=4, width=32)).eval()
    path = save_weights(
        tmp_path / "ckpt.safetensors", untrained_but_responsive(seed=3), tokenizer, list("abcde"), 32, 1
    )
    with safe_open(str(path), framework="pt") as f:
        tensors, metadata = {name: f.get_tensor(name) for name in f.keys()}, f.metadata()
    save_file(tensors, path, metadata=metadata | {"sampling": entry})
    with pytest.raises(ValueError, match=rf"checkpoint {path} has damaged or edited metadata"):
        load_checkpoint(path)
