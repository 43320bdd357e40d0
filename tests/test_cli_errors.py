"""Bad input to every script: exit status 2, one `error:` line naming the bad value, no traceback, no file changed.

Each case is (script, arguments, what the message must contain, optional setup). Arguments may name
{run} (a finished toy run, shared and never changed), {tmp} (this case's folder), {tokenizer} (the run's tokenizer)
and {copy} (a copy of the run that the setup may damage). Before and after each case every file under the shared
run and the case's folder is hashed: a refused command must leave them as they were.
"""

import hashlib
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mar.cli import (
    cache_latents,
    compare,
    convert_official,
    export_hub,
    make_textures,
    sample,
    sample_at_scale,
    score,
    train,
    train_tokenizer,
)
from mar.cli.options import untyped_options

from .toy import TOY

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "train": train,
    "sample": sample,
    "train_tokenizer": train_tokenizer,
    "cache_latents": cache_latents,
    "compare": compare,
    "convert_official": convert_official,
    "export_hub": export_hub,
    "sample_at_scale": sample_at_scale,
    "score": score,
    "make_textures": make_textures,
}


# ---- setups: each gets (case folder, the copy of the run) and damages or prepares something -----------------------------
def a_file(tmp, copy):
    (tmp / "file").write_text("not a folder\n")


def a_folder_named_png(tmp, copy):
    (tmp / "folder.png").mkdir()


def image_folder(tmp, copy, broken: bool = False, not_an_image: bool = False, empty_class: bool = False):
    from PIL import Image

    for colour in ("red", "blue"):
        (tmp / "data" / colour).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (32, 32), colour).save(tmp / "data" / colour / f"{i}.png")
    if broken:
        data = (tmp / "data" / "red" / "1.png").read_bytes()
        (tmp / "data" / "red" / "1.png").write_bytes(data[: len(data) // 2])  # truncated PNG
    if not_an_image:
        (tmp / "data" / "blue" / "notes.jpg").write_text("this is not an image")
    if empty_class:
        (tmp / "data" / "green").mkdir()


def truncated_image(tmp, copy):
    image_folder(tmp, copy, broken=True)


def text_named_jpg(tmp, copy):
    image_folder(tmp, copy, not_an_image=True)


def empty_class(tmp, copy):
    image_folder(tmp, copy, empty_class=True)


def latest_names_missing(tmp, copy):
    (copy / "checkpoints" / "latest").write_text("step-99999999\n")


def latest_checkpoint_dir(copy) -> Path:
    return copy / "checkpoints" / (copy / "checkpoints" / "latest").read_text().strip()


def garbage_resume(tmp, copy):
    (latest_checkpoint_dir(copy) / "resume.pt").write_bytes(b"\x00garbage" * 50)


def truncated_resume(tmp, copy):
    path = latest_checkpoint_dir(copy) / "resume.pt"
    path.write_bytes(path.read_bytes()[:300])


class Exploit:
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent-mar-test-target",))


def malicious_resume(tmp, copy):
    with open(latest_checkpoint_dir(copy) / "resume.pt", "wb") as f:
        pickle.dump({"step": Exploit()}, f)


def truncated_weights(tmp, copy):
    path = latest_checkpoint_dir(copy) / "weights.safetensors"
    path.write_bytes(path.read_bytes()[:1000])


def edited_metadata(tmp, copy):
    """Rewrites the checkpoint with its class list cut to three names (the config says ten)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = latest_checkpoint_dir(copy) / "weights.safetensors"
    with safe_open(str(path), framework="pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    save_file(tensors, path, metadata=metadata | {"classes": json.dumps(["a", "b", "c"])})


def edited_config(tmp, copy):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = latest_checkpoint_dir(copy) / "weights.safetensors"
    with safe_open(str(path), framework="pt") as f:
        tensors, metadata = {k: f.get_tensor(k) for k in f.keys()}, f.metadata()
    config = json.loads(metadata["mar_config"])
    config["width"] *= 2  # metadata of another width than the weights hold
    save_file(tensors, path, metadata=metadata | {"mar_config": json.dumps(config)})


def edited_cache_manifest(tmp, copy):
    (copy / "latents" / "cache.json").write_text('{"format": "mar-latents/1", "shards": ')


def manifest_missing_fields(tmp, copy):
    (copy / "latents" / "cache.json").write_text('{"format": "mar-latents/1"}')


def truncated_shard(tmp, copy):
    shard = copy / "latents" / "shard-00000.safetensors"
    shard.write_bytes(shard.read_bytes()[:500])


def broken_tokenizer(tmp, copy):
    (copy / "tokenizer" / "config.json").write_text("{ not json")


def tokenizer_in_output(tmp, copy):
    (tmp / "tok").mkdir()
    (tmp / "tok" / "config.json").write_text("{}")


def other_files_in_out(tmp, copy):
    (tmp / "cache").mkdir()
    (tmp / "cache" / "notes.txt").write_text("mine")


def other_tokenizer(tmp, copy):
    import torch

    from vae import KLTokenizer, small_autoencoder

    torch.manual_seed(123)
    KLTokenizer(small_autoencoder(4, 4)).save(tmp / "other-tokenizer")


def only_image_unreadable(tmp, copy):
    (tmp / "data" / "cats").mkdir(parents=True)
    (tmp / "data" / "cats" / "only.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")


def nan_weights(tmp, copy):
    """The latest checkpoint's weights all NaN, its metadata kept."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = latest_checkpoint_dir(copy) / "weights.safetensors"
    with safe_open(str(path), framework="pt") as f:
        metadata, tensors = f.metadata(), {name: f.get_tensor(name) for name in f.keys()}
    save_file({k: t.fill_(float("nan")) if t.is_floating_point() else t for k, t in tensors.items()}, path, metadata)


def not_an_ldm_checkpoint(tmp, copy):
    import torch

    torch.save({"classifier.weight": torch.zeros(3, 2)}, tmp / "classifier.ckpt")


def live_lock(tmp, copy):
    """A lock held by a live process (this one): the copy of the run is in use."""
    import os
    import socket

    (copy / "run.lock").write_text(f"{os.getpid()} {socket.gethostname()}\n")


RUN = ["--output", "{tmp}/out", "--cache-dir", "{run}/cache"]
T = TOY + RUN
TOK = ["--tokenizer", "{tokenizer}"]
RESUME = TOY + ["--cache-dir", "{run}/cache", "--output", "{copy}", "--resume"]
TT = [
    "--num-images",
    "60",
    "--images",
    "60",
    "--held-out",
    "10",
    "--steps",
    "2",
    "--no-progress",
    "--cache-dir",
    "{run}/cache",
    "--output",
    "{tmp}/tok",
]
CL = [
    "--num-images",
    "120",
    "--cache-dir",
    "{run}/cache",
    "--tokenizer",
    "{tokenizer}",
    "--out",
    "{tmp}/cache",
    "--no-progress",
]
S = ["--checkpoint", "{run}", "--out", "{tmp}/s.png"]

CASES = [
    # train.py: option values
    ("train", T + ["--image-size", "0"], "--image-size: 0", None),
    ("train", T + ["--image-size", "abc"], "'abc' is not an integer", None),
    ("train", T + ["--patch-size", "0"], "--patch-size: 0", None),
    ("train", T + ["--batch-size", "0"], "--batch-size: 0", None),
    ("train", T + ["--grad-accum", "0"], "--grad-accum: 0", None),
    ("train", T + ["--save-every", "0"], "--save-every: 0", None),
    ("train", T + ["--log-every", "0"], "--log-every: 0", None),
    ("train", T + ["--ema-decay", "1.5"], "--ema-decay: 1.5", None),
    ("train", T + ["--ema-decay", "1"], "--ema-decay: 1", None),
    ("train", T + ["--keep-checkpoints", "-1"], "--keep-checkpoints: -1", None),
    ("train", T + ["--keep-checkpoints", "0"], "--keep-checkpoints: 0", None),
    ("train", T + ["--epochs", "0"], "--epochs: 0", None),
    ("train", T + ["--cfg", "nan"], "--cfg: nan", None),
    ("train", T + ["--cfg", "-1"], "--cfg: -1", None),
    ("train", T + ["--temperature", "nan"], "--temperature: nan", None),
    ("train", T + ["--temperature", "-0.5"], "--temperature: -0.5", None),
    ("train", T + ["--lr", "-1"], "--lr: -1", None),
    ("train", T + ["--lr", "inf"], "--lr: inf", None),
    ("train", T + ["--blr", "0"], "--blr: 0", None),
    ("train", T + ["--warmup-epochs", "-1"], "--warmup-epochs: -1", None),
    ("train", T + ["--weight-decay", "nan"], "--weight-decay: nan", None),
    ("train", T + ["--grad-clip", "0"], "--grad-clip: 0", None),
    ("train", T + ["--num-iter", "0"], "--num-iter: 0", None),
    ("train", T + ["--num-iter", "17"], "--num-iter 17", None),
    ("train", T + ["--diffusion-steps", "1000"], "--diffusion-steps 1000", None),
    ("train", T + ["--diffusion-steps", "0"], "--diffusion-steps: 0", None),
    ("train", T + ["--head-sampler", "dpm++", "--diffusion-steps-last", "991"], "--diffusion-steps-last 991", None),
    ("train", T + ["--samples-per-class", "0"], "--samples-per-class: 0", None),
    ("train", T + ["--seed", "-1"], "--seed: -1", None),
    ("train", T + ["--data-seed", "-3"], "--data-seed: -3", None),
    ("train", T + ["--num-images", "0"], "--num-images: 0", None),
    ("train", T + ["--num-images", "7"], "--num-images: 7", None),
    ("train", T + ["--image-size", "100000"], "--image-size: 100000", None),
    ("train", T + ["--device", "cuda:3"], "cuda:3", None),
    ("train", T + ["--device", "mps"], "mps", None),
    ("train", T + ["--device", "meta"], "meta", None),
    ("train", T + ["--data-path", "{tmp}/file"], "image folder {tmp}/file is a file", a_file),
    ("train", T + ["--max-bad-steps", "0"], "--max-bad-steps: 0", None),
    ("train", T + ["--stop-after-steps", "0"], "--stop-after-steps: 0", None),
    ("train", T + ["--sample-every", "-2"], "--sample-every: -2", None),
    ("train", T + ["--num-workers", "-1"], "--num-workers: -1", None),
    ("train", T + ["--tokenizer-steps", "0"], "--tokenizer-steps: 0", None),
    ("train", T + ["--tokenizer-channels", "0"], "--tokenizer-channels: 0", None),
    ("train", T + ["--tokenizer-images", "1"], "--tokenizer-images: 1", None),
    ("train", T + ["--tokenizer-pixel-loss", "l3"], "'l3'", None),
    ("train", T + ["--tokenizer-initial-logvar=nan"], "--tokenizer-initial-logvar: nan", None),
    ("train", T + ["--tokenizer-stride", "3"], "--tokenizer-stride 3", None),
    ("train", T + ["--diffusion-batch-mul", "0"], "--diffusion-batch-mul: 0", None),
    ("train", T + ["--head-width", "0"], "--head-width: 0", None),
    ("train", T + ["--head-depth", "0"], "--head-depth: 0", None),
    ("train", T + ["--mask-ratio-min", "1"], "--mask-ratio-min: 1", None),
    ("train", T + ["--mask-ratio-std", "0"], "--mask-ratio-std: 0", None),
    ("train", T + ["--model", "mar-giant"], "mar-giant", None),
    ("train", T + ["--head", "transformer"], "transformer", None),
    ("train", T + ["--amp", "fp8"], "fp8", None),
    ("train", T + ["--lr-schedule", "step"], "'step'", None),
    ("train", T + ["--bogus-flag"], "--bogus-flag", None),
    ("train", T + ["--output", ""], "--output: ''", None),
    ("train", T + ["--device", "quantum"], "quantum", None),
    ("train", T + ["--batch-size", "25", "--grad-accum", "2"], "--batch-size 25 is not divisible", None),
    ("train", T + ["--batch-size", "500"] + TOK, "--batch-size 500 is larger than the dataset (120 images)", None),
    ("train", T + ["--image-size", "36"] + TOK, "image size 36 is not divisible", None),
    # train.py: paths and folders
    ("train", TOY + ["--output", "{tmp}/file"], "{tmp}/file is a file", a_file),
    ("train", TOY + ["--output", "{tmp}/file/run"], "which is a file", a_file),
    ("train", T + ["--cache-dir", "{tmp}/file"], "--cache-dir {tmp}/file is a file", a_file),
    ("train", T + ["--latent-cache", "{tmp}/no/such/cache"], "{tmp}/no/such/cache", None),
    ("train", T + ["--tokenizer", "{tmp}/nowhere"], "nowhere does not exist", None),
    ("train", T + ["--tokenizer", "{tmp}/file"], "{tmp}/file is a file of an unknown kind", a_file),
    ("train", T + ["--tokenizer", "{copy}/tokenizer"], "{copy}/tokenizer is damaged", broken_tokenizer),
    (
        "train",
        T + ["--tokenizer", "{tmp}/classifier.ckpt"],
        "tokenizer {tmp}/classifier.ckpt is not an LDM autoencoder layout",
        not_an_ldm_checkpoint,
    ),
    ("train", T + ["--data-path", "{tmp}/data"], "{tmp}/data/cats/only.png cannot be read", only_image_unreadable),
    ("train", T + ["--data-path", "{tmp}/nodata"], "nodata does not exist", None),
    ("train", T + ["--data-path", "{tmp}/data"], "{tmp}/data/green holds no images", empty_class),
    (
        "train",
        T + ["--data-path", "{tmp}/data", "--batch-size", "2"],
        "{tmp}/data/red/1.png cannot be read",
        truncated_image,
    ),
    (
        "train",
        T + ["--data-path", "{tmp}/data", "--batch-size", "2"] + TOK,
        "{tmp}/data/red/1.png cannot be read",
        truncated_image,
    ),
    (
        "train",
        T + ["--data-path", "{tmp}/data", "--batch-size", "2"] + TOK,
        "{tmp}/data/blue/notes.jpg cannot be read",
        text_named_jpg,
    ),
    ("train", T + ["--head", "categorical"], "needs a discrete --tokenizer", None),
    ("train", T + ["--head", "categorical"] + TOK, "continuous kl tokenizer", None),
    ("train", T + TOK + ["--latent-cache", "{run}/latents", "--num-images", "100"], "n=100", None),
    (
        "train",
        T + TOK + ["--latent-cache", "{copy}/latents"],
        "{copy}/latents/cache.json is unreadable",
        edited_cache_manifest,
    ),
    ("train", T + TOK + ["--latent-cache", "{copy}/latents"], "cache.json is damaged", manifest_missing_fields),
    ("train", T + TOK + ["--latent-cache", "{copy}/latents"], "shard-00000.safetensors is damaged", truncated_shard),
    # train.py: the run folder, resuming and starting from checkpoints
    ("train", TOY + ["--output", "{copy}", "--cache-dir", "{run}/cache"], "already holds a training run", None),
    ("train", RESUME + ["--overwrite"], "contradict", None),
    ("train", RESUME, "in use by process", live_lock),
    ("train", RESUME + ["--num-images", "100"], "n=100", None),
    ("train", RESUME + ["--seed", "3"], "seed: 0 != 3", None),
    ("train", RESUME + ["--batch-size", "12"], "batch_size: 24 != 12", None),
    ("train", RESUME + ["--patch-size", "1"], "patch_size: 1 != 4", None),
    (
        "train",
        RESUME + ["--tokenizer", "{tmp}/other-tokenizer"],
        "is not the tokenizer of the run being resumed",
        other_tokenizer,
    ),
    ("train", RESUME + ["--init-from", "{run}"], "pass only one of them", None),
    ("train", RESUME, "latest names 'step-99999999'", latest_names_missing),
    ("train", RESUME, "resume.pt is damaged", garbage_resume),
    ("train", RESUME, "resume.pt is damaged", truncated_resume),
    ("train", RESUME, "resume.pt is damaged", malicious_resume),
    ("train", RESUME, "weights.safetensors is not a safetensors checkpoint or is truncated", truncated_weights),
    ("train", RESUME, "damaged or edited metadata", edited_metadata),
    ("train", T + ["--init-from", "{run}", "--patch-size", "1"] + TOK, "patch_size: 1 != 4", None),
    ("train", T + ["--init-from", "{tmp}/file"] + TOK, "{tmp}/file is not a safetensors checkpoint", a_file),
    ("train", T + ["--init-from", "{copy}"] + TOK, "does not hold the weights its metadata describes", edited_config),
    # sample.py
    ("sample", ["--out", "{tmp}/s.png"], "--checkpoint", None),
    ("sample", ["--checkpoint", "{run}", "--reuse", "first-step,every"], "--reuse: unknown reuse 'every'", None),
    ("sample", ["--checkpoint", "{run}", "--token-cache", "-1"], "--token-cache: -1", None),
    ("sample", ["--checkpoint", "{run}", "--cache-growth", "0.5"], "--cache-growth: 0.5 is below 1", None),
    ("sample", ["--checkpoint", "{tmp}/missing.safetensors"], "missing.safetensors does not exist", None),
    ("sample", ["--checkpoint", "{tmp}/file"], "{tmp}/file is not a safetensors checkpoint", a_file),
    ("sample", ["--checkpoint", "{copy}"], "latest names 'step-99999999'", latest_names_missing),
    ("sample", ["--checkpoint", "{copy}"], "is not a safetensors checkpoint or is truncated", truncated_weights),
    ("sample", ["--checkpoint", "{copy}"], "holds non-finite weights", nan_weights),
    ("sample", ["--checkpoint", "{copy}"], "damaged or edited metadata", edited_metadata),
    ("sample", S + ["--classes", "3", "10"], "class id 10 is out of range", None),
    ("sample", S + ["--classes", "-1"], "--classes: -1", None),
    ("sample", S + ["--num-iter", "0"], "--num-iter: 0", None),
    ("sample", S + ["--num-iter", "17"], "--num-iter 17", None),
    ("sample", S + ["--diffusion-steps", "1000"], "--diffusion-steps 1000", None),
    ("sample", S + ["--head-sampler", "euler"], "'euler'", None),
    (
        "sample",
        S + ["--head-sampler", "dpm++", "--diffusion-steps", "995"],
        "--diffusion-steps 995 must lie in [1, 990]",
        None,
    ),
    ("sample", S + ["--diffusion-steps-last", "0"], "--diffusion-steps-last: 0", None),
    ("sample", S + ["--diffusion-steps-last", "1500"], "--diffusion-steps-last 1500", None),
    ("sample", S + ["--temperature", "nan"], "--temperature: nan", None),
    ("sample", S + ["--temperature", "-1"], "--temperature: -1", None),
    ("sample", S + ["--cfg", "nan"], "--cfg: nan", None),
    ("sample", S + ["--cfg=-inf"], "--cfg: -inf", None),
    ("sample", S + ["--per-class", "0"], "--per-class: 0", None),
    ("sample", S + ["--batch-size", "0"], "--batch-size: 0", None),
    ("sample", S + ["--seed", "-5"], "--seed: -5", None),
    ("sample", S + ["--cfg-schedule", "cubic"], "cubic", None),
    ("sample", S + ["--cfg-refresh", "0"], "--cfg-refresh: 0", None),
    ("sample", S + ["--device", "cuda:7"], "cuda:7", None),
    ("sample", ["--checkpoint", "{run}", "--out", "{tmp}/x.txt"], "x.txt", None),
    (
        "sample",
        ["--checkpoint", "{run}", "--out", "{tmp}/folder.png"],
        "{tmp}/folder.png is a folder",
        a_folder_named_png,
    ),
    ("sample", ["--checkpoint", "{run}", "--out", "{tmp}/file/s.png"], "{tmp}/file is a file", a_file),
    # train_tokenizer.py
    ("train_tokenizer", TT + ["--kind", "vq", "--codebook-size", "0"], "--codebook-size: 0", None),
    ("train_tokenizer", TT + ["--kind", "vq", "--code-dim", "0"], "--code-dim: 0", None),
    ("train_tokenizer", TT + ["--stride", "0"], "--stride: 0", None),
    ("train_tokenizer", TT + ["--stride", "3"], "--stride 3", None),
    ("train_tokenizer", TT + ["--width", "12"], "--width 12", None),
    ("train_tokenizer", TT + ["--width", "4"], "--width: 4", None),
    ("train_tokenizer", TT + ["--kind", "fsq", "--levels", "8", "1"], "--levels: 1", None),
    ("train_tokenizer", TT + ["--held-out", "0"], "--held-out: 0", None),
    ("train_tokenizer", TT + ["--held-out", "60"], "--held-out 60", None),
    ("train_tokenizer", TT + ["--images", "1"], "--images: 1", None),
    (
        "train_tokenizer",
        TT + ["--images", "500", "--held-out", "100"],
        "--held-out 100 must lie below the 60 images",
        None,
    ),
    ("train_tokenizer", TT + ["--steps", "0"], "--steps: 0", None),
    ("train_tokenizer", TT + ["--batch-size", "0"], "--batch-size: 0", None),
    ("train_tokenizer", TT + ["--lr", "0"], "--lr: 0", None),
    ("train_tokenizer", TT + ["--kl-weight", "nan"], "--kl-weight: nan", None),
    ("train_tokenizer", TT + ["--beta", "-1"], "--beta: -1", None),
    ("train_tokenizer", TT + ["--warmup-steps", "-1"], "--warmup-steps: -1", None),
    ("train_tokenizer", TT + ["--kind", "rq"], "'rq'", None),
    ("train_tokenizer", TT + ["--pixel-loss", "huber"], "'huber'", None),
    ("train_tokenizer", TT + ["--initial-logvar", "nan"], "--initial-logvar: nan", None),
    ("train_tokenizer", TT + ["--initial-logvar", "40"], "--initial-logvar: 40", None),
    ("train_tokenizer", TT + ["--amp", "fp8"], "fp8", None),
    ("train_tokenizer", TT + ["--image-size", "30"], "image size 30 is not divisible by --stride 4", None),
    ("train_tokenizer", TT + ["--output", "{tmp}/file"], "{tmp}/file is a file", a_file),
    ("train_tokenizer", TT, "--output {tmp}/tok already holds files", tokenizer_in_output),
    ("train_tokenizer", TT + ["--data-path", "{tmp}/data"], "{tmp}/data/green holds no images", empty_class),
    (
        "train_tokenizer",
        TT + ["--data-path", "{tmp}/data", "--images", "6", "--held-out", "1"],
        "cannot be read",
        truncated_image,
    ),
    # cache_latents.py
    ("cache_latents", ["--tokenizer", "{tokenizer}"], "--out", None),
    ("cache_latents", CL + ["--tokenizer", "{tmp}/nowhere"], "nowhere does not exist", None),
    ("cache_latents", CL + ["--tokenizer", "{copy}/tokenizer"], "{copy}/tokenizer is damaged", broken_tokenizer),
    ("cache_latents", CL + ["--out", "{tmp}/file"], "{tmp}/file is a file", a_file),
    ("cache_latents", CL, "--out {tmp}/cache already holds files that are not this cache", other_files_in_out),
    (
        "cache_latents",
        CL + ["--out", "{copy}/latents", "--num-images", "100"],
        "already holds files that are not this cache",
        None,
    ),
    ("cache_latents", CL + ["--batch-size", "0"], "--batch-size: 0", None),
    ("cache_latents", CL + ["--shard-size", "0"], "--shard-size: 0", None),
    ("cache_latents", CL + ["--num-workers", "-1"], "--num-workers: -1", None),
    ("cache_latents", CL + ["--image-size", "31"], "image size 31 is not divisible by the tokenizer stride 2", None),
    ("cache_latents", CL + ["--data-path", "{tmp}/data"], "{tmp}/data/green holds no images", empty_class),
    ("cache_latents", CL + ["--data-path", "{tmp}/data"], "{tmp}/data/red/1.png cannot be read", truncated_image),
    # compare.py
    ("compare", ["--budget", "huge"], "huge", None),
    ("compare", ["--variants", "vq-gan"], "vq-gan", None),
    ("compare", ["--patch-size", "0"], "--patch-size: 0", None),
    ("compare", ["--tokenizer-pixel-loss", "l2"], "'l2'", None),
    ("compare", ["--kl-initial-logvar=-inf"], "--kl-initial-logvar: -inf", None),
    ("compare", ["--seed", "-1"], "--seed: -1", None),
    ("compare", ["--image-size", "-32"], "--image-size: -32", None),
    ("compare", ["--budget", "tiny", "--output", "{tmp}/file"], "{tmp}/file is a file", a_file),
    ("compare", ["--budget", "tiny", "--output", "{tmp}/c", "--inception-weights", "{tmp}/none.pth"], "none.pth", None),
    ("compare", ["--seeds", "0"], "--seeds: 0", None),
    # make_textures.py
    ("make_textures", ["--output", "{tmp}/file"], "{tmp}/file is a file", a_file),
    ("make_textures", ["--output", "{copy}"], "--output {copy} is not empty", None),
    ("make_textures", ["--output", "{tmp}/t", "--per-class", "0"], "--per-class: 0", None),
    ("make_textures", ["--output", "{tmp}/t", "--image-size", "4"], "--image-size: 4", None),
]


def fingerprints(*folders: Path) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        if folder.exists()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def case_id(case) -> str:
    script, argv, expected, setup = case
    return f"{script}-{setup.__name__ if setup else ''}-{expected[:40]}"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_bad_input_gets_one_line_and_changes_nothing(case, trained_run, tmp_path, capsys):
    script, argv, expected, setup = case
    copy = tmp_path / "copy"
    if any("{copy}" in a for a in argv):  # the setups damage only a copy the arguments name
        shutil.copytree(trained_run, copy, ignore=shutil.ignore_patterns("cache"))
    places = {
        "run": str(trained_run),
        "tmp": str(tmp_path),
        "tokenizer": str(trained_run / "tokenizer"),
        "copy": str(copy),
    }
    if setup is not None:
        setup(tmp_path, copy)
    before = fingerprints(trained_run, tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        SCRIPTS[script].main([a.format(**places) for a in argv])
    captured = capsys.readouterr()
    message = captured.err.strip().splitlines()
    assert exit_info.value.code == 2, captured.err[-2000:]
    assert len(message) == 1 and message[0].startswith("error: "), captured.err[-2000:]
    assert expected.format(**places) in message[0], message[0]
    assert "weights_only=False" not in message[0] and "Traceback" not in captured.err
    assert fingerprints(trained_run, tmp_path) == before
    assert not Path("/nonexistent-mar-test-target").exists()


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_has_a_checked_type(script):
    assert untyped_options(SCRIPTS[script].build_parser()) == []


# Both scripts and one subcommand of `python -m mar` (the others share its dispatch; their checks run in-process above).
REAL_COMMAND_LINES = [
    ("train.py", ["--epochs", "0"]),
    ("sample.py", ["--checkpoint", "nowhere", "--cfg", "nan"]),
    ("cache-latents", ["--tokenizer", "t", "--out", "o", "--shard-size", "-1"]),
]


@pytest.mark.slow
def test_the_real_command_lines_print_one_line_and_exit_2(tmp_path):
    """Each entry point as a user starts it, all at once (each process spends its seconds importing torch)."""
    running = []
    for script, argv in REAL_COMMAND_LINES:
        folder = tmp_path / script
        folder.mkdir()
        command = [str(ROOT / script)] if script.endswith(".py") else ["-m", "mar", script]
        process = subprocess.Popen(
            [sys.executable, *command, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder
        )
        running.append((script, folder, process))
    for script, folder, process in running:
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 2 and stdout == "", (script, process.returncode, stdout)
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: "), (script, stderr)
        assert list(folder.iterdir()) == [], script


@pytest.mark.slow
@pytest.mark.parametrize(
    "failure",
    [PermissionError(13, "Permission denied"), "SafetensorError"],
    ids=["read-only folder", "full disk"],
)
def test_a_checkpoint_write_failing_mid_run_is_one_line_and_keeps_the_previous(failure, tmp_path, capsys, monkeypatch):
    """The second checkpoint of a run fails (a checkpoints folder made read-only, a full disk): one line naming the
    folder and the fix, and the first checkpoint stays the latest."""
    from safetensors import SafetensorError

    import mar.train.atomic_files as atomic_files

    error = (
        SafetensorError("Error while serializing: IoError(File too large)") if failure == "SafetensorError" else failure
    )
    real_save, calls = atomic_files.save_file, []

    def fails_after_the_first(tensors, filename, metadata):
        calls.append(filename)
        if len(calls) > 1:
            raise error
        real_save(tensors, filename, metadata)

    monkeypatch.setattr(atomic_files, "save_file", fails_after_the_first)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        train.main(
            TOY
            + ["--output", str(out), "--cache-dir", str(tmp_path / "cache"), "--save-every", "2", "--quality", "off"]
        )
    message = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(message) == 1, message
    first = out / "checkpoints" / "step-00000002"
    assert f"could not be written in {out / 'checkpoints'}" in message[0]
    assert f"the previous checkpoint {first} is intact" in message[0]
    assert (out / "checkpoints" / "latest").read_text().strip() == first.name
