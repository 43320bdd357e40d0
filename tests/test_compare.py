"""compare.py end to end at the tiny budget: every variant trained and scored, a well-formed table, kept work reused."""
import json
import math

import pytest
from PIL import Image

import compare
import train
import train_tokenizer

VARIANTS = ["kl-diffusion", "vq-ce", "fsq-ce", "vq-diffusion"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    args = ["--budget", "tiny", "--output", str(out), "--cache-dir", str(out / "cache"), "--no-progress"]
    return out, args, compare.main(args)


def test_table_has_every_variant_unguided_and_guided_with_finite_metrics(compared):
    out, _, results = compared
    rows = results["rows"]
    assert [r["variant"] for r in rows] == ["real images (training set)"] + [v for v in VARIANTS for _ in range(2)]
    assert [r["cfg"] for r in rows[1:]] == [1.0, compare.BUDGETS["tiny"].cfg] * 4
    for row in rows:
        assert math.isfinite(row["fid"]) and row["fid"] > -1e-6
        assert all(0 <= row[key] <= 1 for key in ("accuracy", "precision", "recall"))
    for row in rows[1:]:
        assert row["images_per_s"] > 0 and row["steps"] == 5 and math.isfinite(row["psnr"]) and math.isfinite(row["rfid"])
        assert ("usage" in row) == (row["tokenizer"] != "kl")
    assert json.loads((out / "results.json").read_text())["rows"] == rows
    assert 0 <= results["classifier"]["test_accuracy"] <= 1


def test_markdown_table_is_well_formed(compared):
    out, _, results = compared
    lines = (out / "table.md").read_text().splitlines()
    table = [line for line in lines if line.startswith("| ") and "FID" not in line and "temperature" not in line
             and "num_iter" not in line]
    header = next(line for line in lines if line.startswith("| variant"))
    width = header.count("|")
    main_rows = [line for line in table if line.count("|") == width]
    assert len(main_rows) == 9 and all(line.count("|") == width for line in main_rows)
    assert lines[lines.index(header) + 1] == "|" + "---|" * (width - 1)
    assert "Command: `python compare.py --budget tiny" in lines[0]


def test_writes_a_grid_per_variant_and_the_sweep_plots(compared):
    out, _, results = compared
    grid = Image.open(out / "samples.png")
    assert grid.width > 4 * 3 * 32 * 2  # four panels of three 32-pixel columns, zoomed twice
    budget = compare.BUDGETS["tiny"]
    assert [p["temperature"] for p in results["sweeps"]["temperature"]] == list(budget.temperatures)
    assert [p["num_iter"] for p in results["sweeps"]["num_iter"]] == list(budget.num_iters)
    assert (out / "sweep-temperature.png").is_file() and (out / "sweep-num-iter.png").is_file()


def test_a_rerun_reuses_the_classifier_tokenizers_and_runs(compared, monkeypatch):
    out, args, results = compared
    monkeypatch.setattr(train_tokenizer, "train_and_measure", lambda *a, **k: pytest.fail("retrained a kept tokenizer"))
    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("retrained a kept run"))
    again = compare.main(args + ["--variants", "kl-diffusion"])
    assert again["rows"][1] == results["rows"][1] | {"images_per_s": again["rows"][1]["images_per_s"]}
    assert again["classifier"] == results["classifier"]


def test_bad_inception_files_fail_before_any_training(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--budget", "tiny", "--output", str(tmp_path), "--inception-weights", str(tmp_path / "missing.pth"),
                      "--inception-reference", str(tmp_path / "ref.npz")])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert "missing.pth not found" in message and "\n" not in message
    assert not (tmp_path / "classifier").exists()
