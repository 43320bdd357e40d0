"""How well a new tokenizer (the one train.py trains for a folder) keeps each kind of data, setting by setting.

For every folder and every named setting: trains the run's small KL tokenizer as train.py would, then reports its
PSNR on held-out images, the data's feature classifier's accuracy on their reconstructions beside its accuracy on
the images themselves, the reconstructions' feature FID, and the seconds it took. A tokenizer whose reconstructions
lose class accuracy is the limit of any generator trained on it. Run one job at a time (2 cores).

Examples:
    python benchmarks/tokenizer_defaults.py --data-path /tmp/sets/shapes /tmp/sets/textures --settings l1-800 mse-800
    python benchmarks/tokenizer_defaults.py --glyphs --data-path /tmp/sets/photos --settings default
"""

import argparse
import json
import time

import torch

from mar.cli.common import add_data_arguments, dataset_name, open_dataset
from mar.cli.train_options import NEW_TOKENIZER
from mar.eval.classifier import accuracy
from mar.eval.quality import reference_set, tokenizer_metrics
from mar.eval.reference_data import CLASSIFIER_STEPS, dataset_classifier
from mar.precision import resolve_precision
from vae import KLTokenizer, load_tokenizer, small_autoencoder, train_and_measure
from vae.embedded import GENERAL_TOKENIZER, GLYPH_TOKENIZER
from vae.train import reconstruct

SETTINGS = {
    "default": {"tokenizer_init": "general", "tokenizer_steps": 300},  # what train.py trains by default
    "l1-800": {"tokenizer_pixel_loss": "l1", "tokenizer_initial_logvar": 0.0, "tokenizer_steps": 800},
    "mse-800": {"tokenizer_pixel_loss": "mse", "tokenizer_initial_logvar": -8.0, "tokenizer_steps": 800},
    "mse-1600": {"tokenizer_pixel_loss": "mse", "tokenizer_initial_logvar": -8.0, "tokenizer_steps": 1600},
    "l1-narrow-1600": {"tokenizer_pixel_loss": "l1", "tokenizer_initial_logvar": -8.0, "tokenizer_steps": 1600},
    "mse-2ch-1600": {
        "tokenizer_pixel_loss": "mse",
        "tokenizer_initial_logvar": -8.0,
        "tokenizer_steps": 1600,
        "tokenizer_channels": 2,
    },
    "glyphs-0": {"tokenizer_init": "glyphs", "tokenizer_steps": 0},  # the shipped glyph tokenizer as it is
    "general-0": {"tokenizer_init": "general", "tokenizer_steps": 0},  # the shipped general one as it is
    "general-300": {"tokenizer_init": "general", "tokenizer_steps": 300},  # ... fine-tuned on the data
    "general-150": {"tokenizer_init": "general", "tokenizer_steps": 150},
    "mse-w48-1600": {
        "tokenizer_pixel_loss": "mse",
        "tokenizer_initial_logvar": -8.0,
        "tokenizer_steps": 1600,
        "tokenizer_width": 48,
    },
}


SHIPPED = {"general": GENERAL_TOKENIZER, "glyphs": GLYPH_TOKENIZER}


def measure(data_args, setting: dict, device: torch.device, seed: int, classifier_steps: int) -> dict:
    """Trains the tokenizer of ``setting`` on the data of ``data_args``; its figures and the classifier's."""
    options = NEW_TOKENIZER | setting
    dataset, classes = open_dataset(data_args)
    classifier, info, train_set, (held_images, held_labels) = dataset_classifier(
        data_args, dataset, data_args.name, len(classes), device, steps=classifier_steps, progress=False
    )
    images = train_set[0][: options["tokenizer_images"]]  # the classifier's training images; held_images stay out
    torch.manual_seed(seed)
    if options.get("tokenizer_init") in SHIPPED:
        autoencoder = load_tokenizer(str(SHIPPED[options["tokenizer_init"]])).autoencoder.requires_grad_(True)
    else:
        autoencoder = small_autoencoder(
            options["tokenizer_channels"],
            options["tokenizer_stride"],
            options["tokenizer_width"],
            options["tokenizer_initial_logvar"],
        )
    tokenizer = KLTokenizer(
        autoencoder, kl_weight=options["tokenizer_kl_weight"], pixel_loss=options["tokenizer_pixel_loss"]
    )
    started = time.time()
    train_and_measure(
        tokenizer,
        images.to(device),
        held_out=1,
        steps=options["tokenizer_steps"],
        batch_size=options["tokenizer_batch_size"],
        precision=resolve_precision("auto", device),
        generator=torch.Generator(device).manual_seed(seed),
        progress=False,
    )
    seconds = time.time() - started
    metrics = tokenizer_metrics(tokenizer, classifier, reference_set(classifier, held_images))
    reconstructions = reconstruct(tokenizer, held_images.to(device))
    return {
        "seconds": round(seconds, 1),
        "psnr": round(metrics["psnr"], 2),
        "rfid": round(metrics["rfid"], 3),
        "accuracy_real": round(info["test_accuracy"], 4),
        "accuracy_reconstructed": round(accuracy(classifier, reconstructions, held_labels), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-path", nargs="*", default=[], help="ImageFolder roots")
    parser.add_argument("--glyphs", action="store_true", help="also the embedded glyph set")
    parser.add_argument("--settings", nargs="+", default=["default"], choices=list(SETTINGS))
    parser.add_argument("--cache-dir", default="data_cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier-steps", type=int, default=CLASSIFIER_STEPS, help="the judge's training steps")
    args = parser.parse_args()
    device = torch.device("cpu")
    sources = ([None] if args.glyphs else []) + args.data_path
    precision = resolve_precision("auto", device)
    print(f"precision: {'fp32' if precision is None else str(precision).removeprefix('torch.')}")
    for source in sources:
        data_parser = argparse.ArgumentParser()
        add_data_arguments(data_parser)
        data_args = data_parser.parse_args(
            (["--data-path", source] if source else []) + ["--cache-dir", args.cache_dir]
        )
        data_args.name = dataset_name(data_args)
        for name in args.settings:
            row = {"data": source or "glyphs", "setting": name} | measure(
                data_args, SETTINGS[name], device, args.seed, args.classifier_steps
            )
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
