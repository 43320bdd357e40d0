"""compare.py end to end at the tiny budget with 2 seeds: recipe sweeps, intervals, claims, kept work reused."""

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from mar.cli import compare, train, train_tokenizer
from mar.eval.intervals import Interval, mean_interval

VARIANTS = ["kl-diffusion", "fsq-ce"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    args = [
        "--budget",
        "tiny",
        "--variants",
        *VARIANTS,
        "--output",
        str(out),
        "--cache-dir",
        str(out / "cache"),
        "--no-progress",
    ]
    return out, args, compare.main(args)


@pytest.mark.slow
def test_rows_hold_intervals_over_two_seeds(compared):
    _, _, results = compared
    rows, seed_rows = results["rows"], results["seed_rows"]
    assert results["seeds"] == [0, 1]
    assert [(r["variant"], r["cfg"]) for r in rows] == [("real images (training set)", None)] + [
        (v, cfg) for v in VARIANTS for cfg in (1.0, compare.BUDGETS["tiny"].cfg)
    ]
    for row in rows[1:]:
        assert row["seeds"] == [0, 1]
        for metric in ("fid", "accuracy", "precision", "recall", "psnr"):
            per_seed = [r[metric] for r in seed_rows if (r["variant"], r["cfg"]) == (row["variant"], row["cfg"])]
            assert len(per_seed) == 2 and row[metric] == mean_interval(per_seed)
            assert math.isfinite(row[metric].low) and row[metric].low <= row[metric].mean <= row[metric].high
    for row in seed_rows[1:]:
        assert row["steps"] == 5 and row["images_per_s"] > 0 and ("usage" in row) == (row["tokenizer"] != "kl")
        assert all(0 <= row[key] <= 1 for key in ("accuracy", "precision", "recall"))


@pytest.mark.slow
def test_results_json_stores_intervals_and_every_seed(compared):
    out, _, results = compared
    stored = json.loads((out / "results.json").read_text())
    fid = results["rows"][1]["fid"]
    assert stored["rows"][1]["fid"] == {"mean": fid.mean, "low": fid.low, "high": fid.high, "n": 2}
    assert len(stored["seed_rows"]) == 1 + len(VARIANTS) * 2 * 2


@pytest.mark.slow
def test_one_claim_line_per_metric_guidance_and_baseline(compared):
    _, _, results = compared
    assert len(results["claims"]) == 2 * 2  # (cfg 1, cfg 4) x (FID, accuracy) against fsq-ce
    for line in results["claims"]:
        assert "kl-diffusion" in line and "fsq-ce" in line and "\n" not in line
        assert ("disjoint" in line) != ("not settled" in line or "tied" in line)


@pytest.mark.slow
def test_each_variant_trains_with_the_recipe_its_own_sweep_chose(compared):
    out, _, results = compared
    budget = compare.BUDGETS["tiny"]
    for name in VARIANTS:
        points = results["recipe_sweeps"][name]
        assert len(points) == len(budget.lr_factors) * len(budget.warmup_fractions)
        chosen = [p for p in points if p.get("chosen")]
        assert len(chosen) == 1 and chosen[0]["held_out_loss"] == min(p["held_out_loss"] for p in points)
        for seed in (0, 1):
            settings = json.loads((out / "runs" / name / f"seed-{seed}" / "compare.json").read_text())
            assert (settings["lr"], settings["warmup_epochs"], settings["seed"]) == (
                chosen[0]["lr"],
                chosen[0]["warmup_epochs"],
                seed,
            )
        assert all(row["lr"] == chosen[0]["lr"] for row in results["rows"] if row["variant"] == name)


@pytest.mark.slow
def test_each_seed_trains_its_own_tokenizer(compared):
    out, _, _ = compared
    weights = [
        (out / "tokenizers" / "kl" / f"seed-{seed}" / "diffusion_pytorch_model.safetensors").read_bytes()
        for seed in (0, 1)
    ]
    assert weights[0] != weights[1]


@pytest.mark.slow
def test_markdown_table_is_well_formed(compared):
    out, _, _ = compared
    lines = (out / "table.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| variant"))
    width = header.count("|")
    body = lines[lines.index(header) + 2 : lines.index(header) + 2 + 1 + 2 * len(VARIANTS)]
    assert lines[lines.index(header) + 1] == "|" + "---|" * (width - 1)
    assert all(line.count("|") == width for line in body) and "[" in body[1]
    assert "Command: `mar compare --budget tiny" in lines[0]
    assert sum(line.startswith("- cfg ") for line in lines) == 4


@pytest.mark.slow
def test_writes_a_grid_per_variant_and_the_sweep_plots(compared):
    out, _, results = compared
    grid = Image.open(out / "samples.png")
    assert grid.width > 2 * 3 * 32 * 2  # two panels of three 32-pixel columns, zoomed twice
    budget = compare.BUDGETS["tiny"]
    assert [p["temperature"] for p in results["sweeps"]["temperature"]] == list(budget.temperatures)
    assert [p["num_iter"] for p in results["sweeps"]["num_iter"]] == list(budget.num_iters)
    assert (out / "sweep-temperature.png").is_file() and (out / "sweep-num-iter.png").is_file()


@pytest.mark.slow
def test_a_rerun_reuses_the_classifier_tokenizers_sweeps_and_runs(compared, monkeypatch):
    _, args, results = compared
    monkeypatch.setattr(train_tokenizer, "train_and_measure", lambda *a, **k: pytest.fail("retrained a kept tokenizer"))
    monkeypatch.setattr(train, "fit", lambda *a, **k: pytest.fail("retrained a kept run"))
    again = compare.main(args[:3] + ["kl-diffusion"] + args[5:])
    assert again["seed_rows"][1] == results["seed_rows"][1] | {"images_per_s": again["seed_rows"][1]["images_per_s"]}
    assert again["classifier"] == results["classifier"]
    assert again["recipe_sweeps"]["kl-diffusion"] == results["recipe_sweeps"]["kl-diffusion"]


def test_a_run_folder_of_other_settings_stops_instead_of_being_relabelled(tmp_path, capsys):
    run = tmp_path / "runs" / "kl-diffusion" / "seed-0"
    run.mkdir(parents=True)
    (run / "compare.json").write_text(json.dumps({"lr": 2e-3}))
    args = compare.parse_args(["--budget", "tiny", "--output", str(tmp_path)])
    with pytest.raises(SystemExit):
        compare.train_variant(
            args,
            compare.BUDGETS["tiny"],
            compare.BY_NAME["kl-diffusion"],
            0,
            {"lr": 1e-3, "warmup_epochs": 0.0},
            tmp_path,
            run,
            epochs=1,
        )
    assert "holds a run of other settings" in capsys.readouterr().err
    assert json.loads((run / "compare.json").read_text()) == {"lr": 2e-3}


def test_a_kept_run_of_another_budget_stops_before_any_work(tmp_path, capsys):
    args = compare.parse_args(["--budget", "tiny", "--output", str(tmp_path)])
    run = tmp_path / "runs" / "kl-diffusion" / "seed-1"
    run.mkdir(parents=True)
    recipe = {"lr": 1e-3, "warmup_epochs": 0.0}  # any recipe: the sweep has not chosen one yet when this is checked
    tiny = compare.run_settings(
        args, compare.BUDGETS["tiny"], compare.BY_NAME["kl-diffusion"], 1, recipe, compare.BUDGETS["tiny"].epochs
    )
    (run / "compare.json").write_text(json.dumps(tiny))
    compare.check_kept_runs(args, compare.BUDGETS["tiny"], tmp_path)
    small = compare.run_settings(
        args, compare.BUDGETS["small"], compare.BY_NAME["kl-diffusion"], 1, recipe, compare.BUDGETS["small"].epochs
    )
    (run / "compare.json").write_text(json.dumps(small))
    with pytest.raises(SystemExit):
        compare.main(["--budget", "tiny", "--output", str(tmp_path), "--cache-dir", str(tmp_path / "cache")])
    message = capsys.readouterr().err.strip()
    assert "seed-1 holds a run of other settings" in message and "\n" not in message
    assert not (tmp_path / "cache").exists() and not (tmp_path / "tokenizers").exists()
    assert json.loads((run / "compare.json").read_text()) == small


def test_bad_inception_files_fail_before_any_training(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(
            [
                "--budget",
                "tiny",
                "--output",
                str(tmp_path),
                "--cache-dir",
                str(tmp_path / "cache"),
                "--inception-weights",
                str(tmp_path / "missing.pth"),
                "--inception-reference",
                str(tmp_path / "ref.npz"),
            ]
        )
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert "missing.pth not found" in message and "\n" not in message
    assert not (tmp_path / "cache" / "classifiers").exists()


def test_interval_cells_print_bounds_and_single_values_print_the_mean():
    from mar.eval.comparison import cell

    assert cell(Interval(1.0, 0.5, 1.5, 2)) == "1.000 [0.500, 1.500]"
    assert cell(Interval(1.0, -math.inf, math.inf, 1)) == "1.000"


def test_a_kept_tokenizer_of_another_pixel_loss_is_retrained_and_its_runs_refused(tmp_path, monkeypatch, capsys):
    budget = compare.BUDGETS["tiny"]
    folder = tmp_path / "tokenizers" / "kl" / "seed-0"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(
        json.dumps({"steps": budget.tokenizer_steps})
    )  # before the options: l1, logvar 0
    calls = []
    monkeypatch.setattr(train_tokenizer, "main", calls.append)
    default = compare.parse_args(["--budget", "tiny", "--output", str(tmp_path)])
    compare.tokenizer_folder(default, budget, "kl", 0, tmp_path)
    assert calls == []  # the kept one is of the default recipe
    mse = compare.parse_args(
        ["--budget", "tiny", "--output", str(tmp_path), "--tokenizer-pixel-loss", "mse", "--kl-initial-logvar", "-8"]
    )
    compare.tokenizer_folder(mse, budget, "kl", 0, tmp_path)
    given = calls[0]
    assert given[given.index("--pixel-loss") + 1] == "mse" and float(given[given.index("--initial-logvar") + 1]) == -8

    recipe = {"lr": 1e-3, "warmup_epochs": 0.0}
    settings = compare.run_settings(default, budget, compare.BY_NAME["kl-diffusion"], 0, recipe, budget.epochs)
    assert not any(key.startswith("tokenizer_") for key in settings)  # markers of earlier versions stay valid
    run = tmp_path / "runs" / "kl-diffusion" / "seed-0"
    run.mkdir(parents=True)
    (run / "compare.json").write_text(json.dumps(settings))
    with pytest.raises(SystemExit):
        compare.check_kept_runs(mse, budget, tmp_path)
    assert "holds a run of other settings" in capsys.readouterr().err


def test_the_table1_set_expands_to_the_papers_rows_with_both_heads():
    args = compare.parse_args(["--variants", "table1", "kl-diffusion"])
    assert args.variants == compare.VARIANT_SETS["table1"]
    rows = {(v.attention, v.order, v.one_per_step) for v in map(compare.BY_NAME.get, args.variants)}
    assert rows == {
        ("causal", "raster", False),
        ("causal", "random", False),
        ("bidirectional", "random", True),
        ("bidirectional", "random", False),
    }
    assert all(compare.BY_NAME[n].paper for n in args.variants)


@pytest.mark.slow
def test_table1_rows_train_causal_models_and_reuse_mars_runs_for_one_token_per_step(tmp_path):
    from mar import load_checkpoint

    names = ["ar-raster-kl-diffusion", "one-per-step-kl-diffusion", "kl-diffusion"]
    results = compare.main(
        [
            "--budget",
            "tiny",
            "--variants",
            *names,
            "--output",
            str(tmp_path),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--seeds",
            "1",
            "--no-progress",
        ]
    )
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ar-raster-kl-diffusion", "kl-diffusion"]
    config = load_checkpoint(tmp_path / "runs" / "ar-raster-kl-diffusion" / "seed-0").model.config
    assert (config.attention, config.order) == ("causal", "raster")
    rows = {(r["variant"], r["cfg"]): r for r in results["rows"][1:]}
    assert (
        rows[("ar-raster-kl-diffusion", 1.0)]["paper_fid"] == 19.23 and rows[("kl-diffusion", 4.0)]["paper_fid"] == 1.98
    )
    assert all(r["images_per_s"].mean > 0 for r in rows.values())
    compared = {
        tuple(line.split(": ", 2)[1].split(" vs ")[i].split(" ")[0] for i in (0, 1)) for line in results["claims"]
    }
    assert compared == {("kl-diffusion", "ar-raster-kl-diffusion"), ("kl-diffusion", "one-per-step-kl-diffusion")}
    table = (tmp_path / "table.md").read_text()
    assert "paper FID" in table and "| one-per-step-kl-diffusion | 1.0 |" in table


def test_a_budget_of_shared_tokenizers_trains_one_per_kind_for_every_seed(tmp_path, monkeypatch):
    from dataclasses import replace

    trained, runs = [], []

    def fake_tokenizer(argv):  # records the call and leaves the metrics a finished tokenizer leaves
        folder = Path(argv[argv.index("--output") + 1])
        trained.append(folder.name)
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"steps": int(argv[argv.index("--steps") + 1])}))

    monkeypatch.setattr(compare.train_tokenizer, "main", fake_tokenizer)

    def fake_run(argv):  # records the call and makes the run folder a finished train.py run leaves
        runs.append(argv)
        folder = Path(argv[argv.index("--output") + 1])
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text("{}")

    monkeypatch.setattr(compare.train, "main", fake_run)
    budget = replace(compare.BUDGETS["tiny"], tokenizer_per_seed=False)
    args = compare.parse_args(["--budget", "tiny", "--seeds", "3"])
    variant = compare.BY_NAME["kl-diffusion"]
    for seed in args.seeds:
        assert compare.tokenizer_folder(args, budget, "kl", seed, tmp_path) == tmp_path / "tokenizers/kl/seed-0"
        run = tmp_path / "runs" / f"seed-{seed}"
        compare.train_variant(args, budget, variant, seed, {"lr": 1e-3, "warmup_epochs": 0}, tmp_path, run, 1)
        assert json.loads((run / "compare.json").read_text())["budget"]["tokenizer_per_seed"] is False
    assert trained == ["seed-0"]
    given = [dict(zip(argv[::2], argv[1::2])) for argv in (r[r.index("--tokenizer") :] for r in runs)]
    assert {(g["--tokenizer"], g["--latent-cache"]) for g in given} == {
        (str(tmp_path / "tokenizers/kl/seed-0"), str(tmp_path / "latents/kl-seed-0"))
    }
    assert [r[r.index("--seed") + 1] for r in runs] == ["0", "1", "2"]


def test_runs_of_per_seed_budgets_record_the_budget_as_before():
    args = compare.parse_args(["--budget", "tiny"])
    settings = compare.run_settings(args, compare.BUDGETS["tiny"], compare.BY_NAME["kl-diffusion"], 0, {}, 1)
    assert "tokenizer_per_seed" not in settings["budget"]


def test_a_run_a_stop_signal_ended_early_is_continued_not_sampled(tmp_path, monkeypatch, capsys):
    args = compare.parse_args(["--budget", "tiny", "--output", str(tmp_path)])
    budget, variant, recipe = compare.BUDGETS["tiny"], compare.BY_NAME["kl-diffusion"], {"lr": 1e-3, "warmup_epochs": 0}
    run, calls = tmp_path / "runs" / "kl-diffusion" / "seed-0", []

    def stopped(argv):  # train.py after SIGTERM: a checkpoint and a normal return, but no metrics.json
        calls.append(argv)
        run.mkdir(parents=True, exist_ok=True)

    monkeypatch.setattr(compare.train, "main", stopped)
    with pytest.raises(SystemExit):
        compare.train_variant(args, budget, variant, 0, recipe, tmp_path, run, 1)
    assert "stopped before its last step; run the same command again" in capsys.readouterr().err
    assert not (run / "compare.json").exists() and "--resume" in calls[0]
    # A folder that an earlier version marked as done when the stop came is continued too.
    (run / "compare.json").write_text(json.dumps(compare.run_settings(args, budget, variant, 0, recipe, 1)))

    def finished(argv):
        calls.append(argv)
        (run / "metrics.json").write_text("{}")

    monkeypatch.setattr(compare.train, "main", finished)
    assert compare.train_variant(args, budget, variant, 0, recipe, tmp_path, run, 1) == run and len(calls) == 2
    monkeypatch.setattr(compare.train, "main", lambda argv: pytest.fail("trained a finished run again"))
    assert compare.train_variant(args, budget, variant, 0, recipe, tmp_path, run, 1) == run
