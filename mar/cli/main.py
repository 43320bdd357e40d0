"""The ``mar`` command: ``mar <tool> [options]`` runs one tool; ``mar --help`` lists them (docs/commands.md)."""

import importlib
import sys

# command -> (module with a ``main(argv)``, one line on what it does)
TOOLS = {
    "train": ("mar.cli.train", "train a generator, tokenizer included (as train.py)"),
    "sample": ("mar.cli.sample", "draw a sample grid from a checkpoint (as sample.py)"),
    "train-tokenizer": ("mar.cli.train_tokenizer", "train a KL, VQ or FSQ tokenizer"),
    "cache-latents": ("mar.cli.cache_latents", "encode a data set into a latent cache (torchrun: many processes)"),
    "compare": ("mar.cli.compare", "the continuous-versus-discrete comparison at equal budgets"),
    "convert-official": ("mar.cli.convert_official", "convert an official MAR checkpoint"),
    "export-hub": ("mar.cli.export_hub", "write a checkpoint as a Hugging Face Hub folder, and push it"),
    "make-textures": ("mar.cli.make_textures", "write the procedural texture set as an image folder"),
    "distill-head": ("mar.cli.distill_head", "distil a checkpoint's head into a guided head (one evaluation per step)"),
    "sample-at-scale": ("mar.cli.sample_at_scale", "draw N class-balanced samples to disk, resumable (torchrun)"),
    "score": ("mar.cli.score", "FID / IS / precision / recall of a sample set against a reference"),
    "demo": ("mar.demo.launch", "the web demo (Gradio)"),
}


def usage() -> str:
    width = max(map(len, TOOLS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in TOOLS.items()]
    return "usage: mar <command> [options]   (mar <command> --help for its options)\n\ncommands:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    name, rest = argv[0], argv[1:]
    if name not in TOOLS:
        sys.exit(f"error: unknown command {name!r}; choose one of {', '.join(TOOLS)} (mar --help lists them)")
    sys.argv[0] = f"mar {name}"  # the tool's usage line names the command as typed
    tool = importlib.import_module(TOOLS[name][0])
    try:
        tool.main(rest)
    except KeyboardInterrupt:
        if not hasattr(tool, "INTERRUPTED"):  # tools that stop cleanly on SIGINT handle it themselves
            raise
        print(f"error: {tool.INTERRUPTED}", file=sys.stderr)
        sys.exit(130)
