"""What train.py decides and reports from the data's held-out classifier (mar/eval/reference_data.py): whether to
add mirrored views, whether the tokenizer is the limit, and how good the samples are during and after training
and, without --cfg, which guidance scale to sample with (docs/evaluation.md)."""

import torch

from mar.cli.common import dataset_name, sampling_options
from mar.eval.classifier import FeatureClassifier
from mar.eval.guidance_choice import CANDIDATES, GuidanceChoice, choose_guidance
from mar.eval.mirroring import decide_mirroring
from mar.eval.reference_data import dataset_classifier
from mar.eval.run_quality import QualityJudge, tokenizer_check
from mar.sampling.config import SamplingConfig
from mar.train.checkpoint import CheckpointWriteError, latest_checkpoint, record_sampling, recorded_sampling
from mar.train.quality_log import QualityLog

CHOICE_SAMPLES = 200  # scored at each candidate guidance scale


def quality_count(args, num_classes: int) -> int:
    """Samples scored at each point: --quality-samples rounded down to whole classes, at least one of each."""
    return max(1, args.quality_samples // num_classes) * num_classes


def held_out_judge(args, dataset, classes: list[str], device, verbose: bool = True) -> tuple[QualityJudge, tuple]:
    """(judge, held-out (images, labels)): the data's classifier, kept in --cache-dir or trained now."""
    classifier, info, train_set, held_out = dataset_classifier(
        args,
        dataset,
        dataset_name(args),
        len(classes),
        device,
        steps=args.classifier_steps,
        progress=not args.no_progress,
    )
    count = quality_count(args, len(classes))
    judge = QualityJudge.of(classifier, info, train_set, held_out, count)
    say = print if verbose else lambda *_: None
    say(
        f"judge: the held-out classifier {info['folder']} scores {judge.classifier_accuracy:.3f} on "
        f"{len(held_out[1])} held-out images; {count} real images have FID {judge.fid_floor:.2f} in its features"
    )
    return judge, held_out


def mirrored_views(
    args, classifier: FeatureClassifier | None, held_out: tuple | None, num_classes: int, verbose: bool = True
) -> bool:
    """--flip / --no-flip when given; off for the embedded glyphs; for a folder, the held-out classifier decides."""
    say = print if verbose else lambda *_: None
    if args.flip is not None:
        say(f"mirrored views: {'on' if args.flip else 'off'} (--{'' if args.flip else 'no-'}flip)")
        return args.flip
    if args.data_path is None:
        say("mirrored views: off (the embedded glyphs: a mirrored digit or letter is another shape)")
        return False
    decision = decide_mirroring(classifier, *held_out, num_classes)
    say(
        f"mirrored views: {'on' if decision.flip else 'off'}, decided from the data: {decision.reason} "
        "(--flip / --no-flip force it)"
    )
    return decision.flip


def report_tokenizer(tokenizer, judge: QualityJudge, held_out: tuple) -> dict:
    """The tokenizer check, printed with a plain verdict; its figures for metrics.json."""
    check = tokenizer_check(tokenizer, judge, *held_out)
    lost = check["accuracy_real"] - check["accuracy_reconstructed"]
    verdict = (
        f"THE TOKENIZER IS THE LIMIT: its reconstructions lose {lost:.3f} of class accuracy, and samples cannot "
        "beat them; train it longer or larger (--tokenizer-steps, --tokenizer-width, --tokenizer-channels)"
        if check["limit"]
        else "it keeps what the classifier needs"
    )
    print(
        f"tokenizer check: PSNR {check['psnr']:.2f} dB on {len(held_out[1])} held-out images; the classifier scores "
        f"{check['accuracy_reconstructed']:.3f} on their reconstructions, {check['accuracy_real']:.3f} on the "
        f"images: {verdict}"
    )
    return check


def choice_count(quality: QualityLog) -> int:
    """Samples scored at each candidate scale: CHOICE_SAMPLES in whole classes, at most the log's count."""
    return min(quality.count, max(1, CHOICE_SAMPLES // quality.num_classes) * quality.num_classes)


def samples_after_training(args, quality: QualityLog) -> int:
    """Samples the run draws once training ends: the guidance choice's (without --cfg; one more set without
    --temperature), the final grid and the final scored samples."""
    sets = 0 if args.cfg is not None else len(CANDIDATES) + (args.temperature is None)
    choice = choice_count(quality) * sets
    return choice + args.samples_per_class * quality.num_classes + quality.count


def chosen_guidance(args, quality: QualityLog | None, model, tokenizer, output) -> GuidanceChoice | None:
    """Without --cfg, the scale the held-out classifier prefers (mar/eval/guidance_choice.py), and without
    --temperature the temperature too, printed and recorded in the last checkpoint so that sample.py, the demo and
    the Hub export sample with them; None with --cfg or --quality off."""
    if args.cfg is not None or quality is None:
        return None
    checkpoint = latest_checkpoint(output)
    recorded = recorded_sampling(checkpoint)
    if recorded:  # a finished run resumed: its checkpoint stays as it was
        chosen = sampling_options(args, recorded)
        print(
            f"guidance: cfg {chosen.cfg:g}, temperature {chosen.temperature:g}, chosen from the data when this "
            "checkpoint was trained"
        )
        return GuidanceChoice(chosen.cfg, chosen.temperature, {}, "recorded in the checkpoint")
    count = choice_count(quality)
    choice = choose_guidance(
        quality.judge,
        model,
        tokenizer,
        quality.num_classes,
        sampling_options(args),
        count,
        args.seed + 1,
        choose_temperature=args.temperature is None,
    )
    print(
        f"guidance: cfg {choice.cfg:g}, temperature {choice.temperature:g}, chosen from the data: {choice.reason} "
        "(--cfg and --temperature force them)"
    )
    try:
        record_sampling(checkpoint, choice.sampling())
    except CheckpointWriteError as error:
        print(f"warning: {error}")
    return choice


def final_quality(
    quality: QualityLog,
    grid: tuple[torch.Tensor, torch.Tensor],
    model,
    tokenizer,
    step: int,
    sampling: SamplingConfig,
) -> dict:
    """The grid's and the final samples' scores (the samples, drawn with ``sampling``, kept in quality/), printed;
    the record for metrics.json."""
    judge = quality.judge
    on_grid = judge.score(*grid)
    samples = quality.score(step, model, tokenizer, save=True, sampling=sampling)
    print(
        f"quality: grid class accuracy {on_grid['accuracy']:.3f} ({on_grid['count']} cells, FID {on_grid['fid']:.2f}); "
        f"{samples['count']} samples: class accuracy {samples['accuracy']:.3f}, FID {samples['fid']:.2f} "
        f"(real images {judge.fid_floor:.2f}; the classifier scores {judge.classifier_accuracy:.3f} on real "
        f"held-out images); {quality.path}, {quality.folder / 'quality.png'}"
    )
    return {
        "grid_accuracy": on_grid["accuracy"],
        "grid_fid": on_grid["fid"],
        "sample_accuracy": samples["accuracy"],
        "sample_fid": samples["fid"],
        "samples_scored": samples["count"],
        "fid_floor": judge.fid_floor,
        "classifier_accuracy": judge.classifier_accuracy,
        "during_training": quality.rows(),
    }
