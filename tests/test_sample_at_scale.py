"""Sample sets at scale: the same files for 1 and 2 processes, resumed without redrawing, ADM's .npz layout."""

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mar.cli import sample_at_scale
from mar.eval.sample_set import SamplePlan, sample_set_record
from mar.sampling.config import SamplingConfig
from mar.train.checkpoint import latest_checkpoint, recorded_sampling

from .two_processes import one_thread, torchrun

FAST = [
    "--num-images",
    "20",
    "--chunk-size",
    "6",
    "--num-iter",
    "2",
    "--diffusion-steps",
    "2",
    "--cfg",
    "2",
    "--no-progress",
]


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_the_plan_balances_classes_and_seeds_chunks_by_index():
    plan = SamplePlan(num_images=20, num_classes=10, chunk_size=6, seed=3)
    assert plan.num_chunks == 4 and list(plan.indices(3)) == [18, 19]
    assert [label for chunk in range(4) for label in plan.labels(chunk).tolist()] == [i // 2 for i in range(20)]
    assert len({plan.generator_seed(k) for k in range(4)}) == 4
    assert SamplePlan(20, 10, 6, 4).generator_seed(0) != plan.generator_seed(0)


@pytest.mark.slow
def test_one_and_two_gloo_processes_write_identical_files(trained_run, tmp_path):
    args = ["--checkpoint", str(trained_run), *FAST, "--device", "cpu"]
    with one_thread():
        sample_at_scale.main([*args, "--out", str(tmp_path / "one")])  # in this process
    two = torchrun("-m", "mar", "sample-at-scale", *args, "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-2000:]
    one, two = files(tmp_path / "one"), files(tmp_path / "two")
    assert len(one) == 20 and one == two
    assert (tmp_path / "one" / "sample_set.json").read_text() == (tmp_path / "two" / "sample_set.json").read_text()


def test_an_interrupted_set_resumes_without_redrawing_and_the_npz_has_adms_layout(trained_run, tmp_path, capsys):
    out = tmp_path / "set"
    sample_at_scale.main(["--checkpoint", str(trained_run), *FAST, "--out", str(out)])
    complete = files(out)
    kept = {name: (out / name).stat().st_mtime_ns for name in complete}
    for name in ("000007.png", "000013.png"):  # a run stopped inside chunks 1 and 2
        (out / name).unlink()
    (out / ".000014.png.tmp-1").write_bytes(b"half a png")
    capsys.readouterr()
    sample_at_scale.main(["--checkpoint", str(trained_run), *FAST, "--out", str(out), "--npz"])
    assert "12 drawn now, 8 already there" in capsys.readouterr().out  # chunks 1 and 2 (6 images each), nothing else
    assert files(out) == complete
    untouched = [name for name in complete if not 6 <= int(name[:6]) < 18]
    assert all((out / name).stat().st_mtime_ns == kept[name] for name in untouched)

    with np.load(out / "samples.npz") as npz:
        assert npz.files == ["arr_0"]
        images = npz["arr_0"]
    assert images.dtype == np.uint8 and images.shape == (20, 32, 32, 3)
    assert np.array_equal(images, np.stack([np.asarray(Image.open(out / name)) for name in sorted(complete)]))


def test_a_folder_of_another_set_is_refused_unchanged(trained_run, tmp_path, capsys):
    out = tmp_path / "set"
    sample_at_scale.main(
        ["--checkpoint", str(trained_run), *FAST[:-1], "--out", str(out), "--num-images", "10", "--no-progress"]
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(SystemExit) as stop:
        sample_at_scale.main(
            ["--checkpoint", str(trained_run), *FAST, "--out", str(out), "--num-images", "10", "--temperature", "0.9"]
        )
    error = capsys.readouterr().err.strip().splitlines()
    first = recorded_sampling(latest_checkpoint(trained_run)).get("temperature", SamplingConfig().temperature)
    assert stop.value.code == 2 and len(error) == 1 and f"temperature: {first} != 0.9" in error[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(SystemExit):
        sample_at_scale.main(["--checkpoint", str(trained_run), "--out", str(tmp_path / "odd"), "--num-images", "25"])
    assert "not a multiple of the checkpoint's 10 classes; use 20 or 30" in capsys.readouterr().err
    assert not (tmp_path / "odd").exists()


def test_a_set_record_leaves_out_the_exact_options_so_older_sets_resume():
    plan = SamplePlan(num_images=20, num_classes=10, chunk_size=4, seed=0)
    old = asdict(SamplingConfig())
    for key in ("cfg_refresh", "token_cache", "reuse"):
        old.pop(key)
    now = sample_set_record(plan, "ckpt", asdict(SamplingConfig(reuse="none")), ema=True)
    assert now == sample_set_record(plan, "ckpt", old, ema=True)
    cached = sample_set_record(plan, "ckpt", asdict(SamplingConfig(token_cache=4)), ema=True)
    assert cached["token_cache"] == 4 and cached != now
