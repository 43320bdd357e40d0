"""The web demo: the step hook leaves samples as they were, the unmasking pictures show exactly the drawn tokens, the
page refuses what sample.py refuses in the same words, the page driven in headless Chromium draws the grid, and the
same endpoint answers gradio_client with the pixels a direct call gives."""

import io
import shutil
import socket

import numpy as np
import pytest
import torch
from PIL import Image

from mar.cli import sample
from mar.cli.main import main as mar_main
from mar.cli.options import untyped_options
from mar.data.images import grid_image
from mar.demo.frames import partial_images
from mar.demo.generation import generate, shown_steps
from mar.demo.launch import build_parser
from mar.demo.quality_note import quality_note, run_metrics
from mar.demo.settings import (
    SettingsError,
    checked_classes,
    checked_count,
    checked_sampling,
    default_sampling,
    preset_backbone_fields,
    preset_controls,
)
from mar.model.masking import unmasking_schedule
from mar.model.tokens import patchify, unpatchify
from mar.sampling.config import PRESETS, SamplingConfig
from mar.sampling.loop import sample_latents
from mar.train.checkpoint import Checkpoint, load_checkpoint

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE = dict(
    classes=["1", "7"],
    per_class=3,
    num_iter=4,
    head_sampler="dpm++",
    diffusion_steps=3,
    temperature=1.0,
    cfg=2.0,
    cfg_schedule="linear",
    preset="exact",
    seed=5,
)  # what the browser and the client ask for


@pytest.fixture(scope="module")
def checkpoint(trained_run):
    return load_checkpoint(trained_run)


@pytest.fixture(scope="module")
def categorical(categorical_generator):
    """An untrained generator with a categorical head on an FSQ tokenizer: the page must serve it too."""
    tokenizer, model = categorical_generator
    return Checkpoint(model=model, ema=None, tokenizer=tokenizer, classes=["a", "b", "c"], image_size=16, step=0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(checkpoint, trained_run):
    pytest.importorskip("gradio", reason="gradio is not installed: pip install -e '.[demo]'")
    from mar.demo.app import build_app, serve

    app = build_app(checkpoint, str(trained_run), torch.device("cpu"), max_images=12)
    yield serve(app, "127.0.0.1", free_port(), block=False)
    app.close()


def expected_grid_size(checkpoint, names: list[str], per_class: int) -> tuple[int, int]:
    s = checkpoint.image_size
    return grid_image(torch.zeros(len(names) * per_class, 3, s, s), names, zoom=max(1, 128 // s)).size


def assert_not_blank(picture: Image.Image) -> None:
    pixels = np.asarray(picture.convert("RGB"))
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100


# ---- the hook and the pictures -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_the_step_hook_changes_no_sample_and_sees_every_step(checkpoint, cfg):
    model, labels, seen = checkpoint.sampling_model, torch.tensor([0, 3, 9]), []
    run = dict(num_iter=5, diffusion_steps=2, cfg=cfg)
    plain = sample_latents(model, labels, generator=torch.Generator().manual_seed(1), **run)
    hooked = sample_latents(
        model,
        labels,
        generator=torch.Generator().manual_seed(1),
        **run,
        on_step=lambda step, tokens, mask: seen.append((step, tokens, mask)),
    )
    assert torch.equal(plain, hooked)
    assert [step for step, _, _ in seen] == [1, 2, 3, 4, 5]
    assert [int(mask[0].sum()) for _, _, mask in seen] == unmasking_schedule(16, 5)
    for _, tokens, mask in seen:  # every row masks the same count; masked tokens are still zero
        assert (mask.sum(1) == mask[0].sum()).all() and (tokens[mask] == 0).all()
    final = patchify(plain, model.config.patch_size)
    for (_, before, _), (_, after, mask) in zip(seen, seen[1:]):  # a drawn token never changes again
        assert torch.equal(after[~mask], final[~mask]) and torch.equal(before[before != 0], final[before != 0])


def test_pictures_show_drawn_tokens_and_paint_the_masked_ones_gray(checkpoint):
    model, tokenizer = checkpoint.sampling_model, checkpoint.tokenizer
    config = model.config
    tokens = torch.randn(2, config.seq_len, config.token_dim)
    none_masked = partial_images(tokens, torch.zeros(2, config.seq_len, dtype=torch.bool), config, tokenizer)
    decoded = tokenizer.decode_latents(unpatchify(tokens, config.patch_size, config.grid_size))
    assert torch.equal(none_masked, decoded)
    assert (partial_images(tokens, torch.ones(2, config.seq_len, dtype=torch.bool), config, tokenizer) == 0).all()
    mask = torch.ones(2, config.seq_len, dtype=torch.bool)
    mask[:, config.grid_size + 2] = False  # row 1, column 2 of the token grid is drawn
    cell = checkpoint.image_size // config.grid_size
    drawn = tokens * ~mask[..., None]
    one = partial_images(drawn, mask, config, tokenizer)
    square = (slice(None), slice(None), slice(cell, 2 * cell), slice(2 * cell, 3 * cell))  # that token's pixels
    outside = torch.ones_like(one, dtype=torch.bool)
    outside[square] = False
    decoded = tokenizer.decode_latents(unpatchify(drawn, config.patch_size, config.grid_size))
    assert torch.equal(one[square], decoded[square]) and (one[square] != 0).float().mean() > 0.9
    assert (one[outside] == 0).all()


def test_shown_steps_are_every_step_or_evenly_spaced_ending_at_k():
    assert shown_steps(5) == [1, 2, 3, 4, 5]
    steps = shown_steps(256, most=32)
    assert len(set(steps)) == 32 and steps[-1] == 256 and steps == sorted(steps) and set(np.diff(steps)) == {8}


def test_a_categorical_checkpoint_generates_its_grid_and_pictures(categorical):
    sampling = checked_sampling(dict(num_iter=3, cfg=2.0), 4, "categorical", 0)
    result = generate(categorical.model, categorical.tokenizer, [0, 2], ["a", "c"], 2, sampling, seed=0, zoom=1)
    assert result.count == 4 and result.grid.size == grid_image(torch.zeros(4, 3, 16, 16), ["a", "c"], zoom=1).size
    assert [caption.split(":")[0] for _, caption in result.frames] == ["step 1/3", "step 2/3", "step 3/3"]


@pytest.mark.slow
def test_the_page_of_a_categorical_checkpoint_greys_out_the_diffusion_controls(categorical):
    pytest.importorskip("gradio", reason="gradio is not installed: pip install -e '.[demo]'")
    from mar.demo.app import build_app

    app = build_app(categorical, "categorical", torch.device("cpu"))
    controls = {block.elem_id: block for block in app.blocks.values() if getattr(block, "elem_id", None)}
    assert controls["head-sampler"].interactive is False and controls["diffusion-steps"].interactive is False
    assert controls["cfg"].interactive is not False and controls["num-iter"].maximum == 4


@pytest.fixture(scope="module")
def causal(checkpoint):
    """An untrained causal generator in raster order on the trained run's tokenizer."""
    from dataclasses import replace

    from mar import MARGenerator

    torch.manual_seed(0)
    model = MARGenerator(replace(checkpoint.model.config, attention="causal", order="raster")).eval()
    return Checkpoint(
        model=model, ema=None, tokenizer=checkpoint.tokenizer, classes=checkpoint.classes, image_size=16, step=0
    )


def test_a_causal_checkpoint_pictures_one_token_per_step_whatever_k(causal):
    length = causal.model.config.seq_len
    sampling = checked_sampling(dict(num_iter=4, diffusion_steps=3), length, "diffusion", 1000)
    result = generate(causal.model, causal.tokenizer, [0, 1], ["0", "1"], 1, sampling, seed=0, zoom=1)
    assert [caption for _, caption in result.frames] == [
        f"step {k}/{length}: {k}/{length} drawn" for k in range(1, length + 1)
    ]


@pytest.mark.slow
def test_the_page_of_a_causal_checkpoint_greys_out_k_and_names_the_model(causal):
    pytest.importorskip("gradio", reason="gradio is not installed: pip install -e '.[demo]'")
    from mar.demo.app import build_app

    app = build_app(causal, "causal", torch.device("cpu"))
    blocks = [block for block in app.blocks.values() if getattr(block, "elem_id", None) or hasattr(block, "value")]
    controls = {block.elem_id: block for block in blocks if getattr(block, "elem_id", None)}
    assert controls["num-iter"].interactive is False and controls["num-iter"].value == causal.model.config.seq_len
    assert any("causal autoregression in raster order" in str(getattr(b, "value", "")) for b in blocks)


# ---- the page's checks are the command line's ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, argv",
    [
        (dict(num_iter=17), ["--num-iter", "17"]),
        (dict(head_sampler="dpm++", diffusion_steps=995), ["--head-sampler", "dpm++", "--diffusion-steps", "995"]),
        (dict(head_sampler="ddpm", diffusion_steps=1000), ["--diffusion-steps", "1000"]),
        (dict(temperature=-0.5), ["--temperature", "-0.5"]),
        (dict(num_iter=2.5), ["--num-iter", "2.5"]),
    ],
)
def test_the_page_refuses_what_sample_py_refuses_in_its_words(trained_run, capsys, tmp_path, bad, argv):
    with pytest.raises(SettingsError) as refused:
        checked_sampling(bad, 16, "diffusion", 1000)
    with pytest.raises(SystemExit) as exited:
        sample.main(["--checkpoint", str(trained_run), "--out", str(tmp_path / "x.png"), "--device", "cpu"] + argv)
    cli = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and str(refused.value) in cli and not (tmp_path / "x.png").exists()


def test_the_page_keeps_the_command_line_defaults_and_checks_its_own_values():
    assert vars(checked_sampling({}, 16, "diffusion", 1000)) == vars(default_sampling())
    assert checked_sampling({"num_iter": 16.0}, 16, "diffusion", 1000).num_iter == 16  # a slider's float
    assert (
        checked_sampling({"head_sampler": "dpm++", "diffusion_steps": 995}, 16, "categorical", 0).diffusion_steps == 995
    )
    with pytest.raises(SettingsError, match="pick at least one class"):
        checked_classes([], ["a", "b"])
    assert checked_classes(["b", "a"], ["a", "b"]) == [1, 0]
    with pytest.raises(SettingsError, match="3 classes x 5 images = 15 images"):
        checked_count(3, 5, 12)


# ---- the script ----------------------------------------------------------------------------------------------------------
def test_no_checkpoint_says_how_to_make_one_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:  # `python -m mar` itself is started in test_cli_errors.py
        mar_main(["demo"])
    printed = capsys.readouterr()
    lines = printed.err.strip().splitlines()
    assert exit_info.value.code == 2 and printed.out == "" and len(lines) == 1
    assert lines[0].startswith("error: ") and "python train.py" in lines[0]
    assert untyped_options(build_parser()) == []


# ---- the page in a real browser, and its endpoint through gradio_client --------------------------------------------------
@pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: apt-get install -y chromium (.ci/run does where apt-get exists)"
)
def test_the_page_in_headless_chromium(server, checkpoint, trained_run, tmp_path):
    from playwright.sync_api import sync_playwright  # the dev extra's: a missing one fails rather than skips

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(server)
        classes = page.locator("#classes")
        for chip in ("0", "2", "3"):  # the page starts with 0-3 picked; keep 1, add 7
            classes.locator(f'.token:has-text("{chip}") .token-remove').click()
        classes.locator("input").fill("7")
        classes.locator("input").press("Enter")
        page.locator("#per-class input[type=range]").fill(str(PAGE["per_class"]))
        page.locator("#num-iter input[type=range]").fill(str(PAGE["num_iter"]))
        page.locator("#head-sampler input[value='dpm++']").check()
        page.locator("#diffusion-steps input[type=range]").fill("995")  # beyond dpm++'s 990
        page.locator("#temperature input[type=number]").fill(str(PAGE["temperature"]))
        page.locator("#cfg input[type=range]").fill(str(PAGE["cfg"]))
        page.locator("#cfg-schedule input[value='linear']").check()
        page.locator("#seed input").fill(str(PAGE["seed"]))
        page.locator("#generate").click()
        page.get_by_text("--diffusion-steps 995 must lie in [1, 990] for --head-sampler dpm++").wait_for(timeout=20_000)
        page.screenshot(path=tmp_path / "refused.png")

        page.locator("#diffusion-steps input[type=range]").fill(str(PAGE["diffusion_steps"]))
        page.locator("#generate").click()
        status = page.locator("#status textarea")
        page.wait_for_function(
            "() => document.querySelector('#status textarea').value.includes('images/s')", timeout=60_000
        )
        answer = page.request.get(page.locator("#grid img").get_attribute("src"))
        grid = Image.open(io.BytesIO(answer.body()))
        shot = tmp_path / "demo.png"
        page.locator("#frames img").nth(PAGE["num_iter"] - 1).wait_for()
        page.screenshot(path=shot, full_page=True)
        frames = page.locator("#frames img").count()
        text = status.input_value()
        quality = page.locator("#quality").inner_text()
        browser.close()
    print(f"screenshot: {shot}")
    assert text.startswith("6 images in ") and "dpm++ head with 3 steps" in text and "seed 5" in text
    record = run_metrics(trained_run)
    assert quality.startswith("Quality at the end of training") and f"{record['sample_accuracy']:.3f} of" in quality
    assert grid.size == expected_grid_size(checkpoint, ["1", "7"], PAGE["per_class"]) and frames == PAGE["num_iter"]
    assert_not_blank(grid)
    assert Image.open(shot).size[0] == 1400


@pytest.mark.slow
def test_the_endpoint_through_gradio_client_gives_the_direct_pixels(server, checkpoint):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    grid_file, status, frames = client.predict(*PAGE.values(), api_name="/generate")
    grid = Image.open(grid_file)
    sampling = checked_sampling({k: PAGE[k] for k in list(PAGE)[2:-2]}, 16, "diffusion", 1000)
    direct = generate(
        checkpoint.sampling_model,
        checkpoint.tokenizer,
        [1, 7],
        ["1", "7"],
        PAGE["per_class"],
        sampling,
        PAGE["seed"],
        zoom=4,
    )
    assert np.array_equal(np.asarray(grid.convert("RGB")), np.asarray(direct.grid))
    assert len(frames) == PAGE["num_iter"] and status.startswith("6 images in ")
    with pytest.raises(AppError, match=r"pick fewer classes or images"):
        client.predict(*{**PAGE, "per_class": 7}.values(), api_name="/generate")
    with pytest.raises(AppError, match=r"no class is picked"):
        client.predict(*{**PAGE, "classes": []}.values(), api_name="/generate")


def test_the_preset_control_sets_k_the_head_controls_and_the_fields_the_page_has_no_control_for():
    assert preset_controls("fast") == (PRESETS["fast"]["num_iter"], "ddpm", PRESETS["fast"]["diffusion_steps"])
    assert preset_controls("exact") == (16, "ddpm", 100)
    hidden = ("cfg_refresh", "token_cache", "cache_buffer", "cache_growth")
    assert preset_backbone_fields("fast") == {k: PRESETS["fast"].get(k, getattr(SamplingConfig(), k)) for k in hidden}
    exact = {"cfg_refresh": 1, "token_cache": 0, "cache_buffer": False, "cache_growth": 0.0}
    assert preset_backbone_fields("exact") == exact


def test_the_page_shows_the_runs_quality_figures_from_any_of_its_paths(trained_run):
    record = run_metrics(trained_run)
    assert record["samples_scored"] > 0 and "grid_accuracy" in record
    weights = sorted((trained_run / "checkpoints").glob("step-*/weights.safetensors"))[-1]
    assert run_metrics(weights) == run_metrics(weights.parent) == record
    note = quality_note(trained_run)
    assert f"class accuracy {record['sample_accuracy']:.3f} of {record['samples_scored']} samples" in note
    assert note.count("step ") == len(record["during_training"]) + 1


def test_a_checkpoint_without_figures_says_so(tmp_path):
    assert quality_note(tmp_path).startswith("No quality figures")
