"""The toy budget the script tests train at: seconds on a CPU, every stage of train.py exercised."""

TOY_TOKENIZER = ["--tokenizer-steps", "3", "--tokenizer-images", "120"]  # a new tokenizer, trained in the run
TOY_GENERATOR = [
    "--num-images",
    "120",
    "--epochs",
    "1",
    "--batch-size",
    "24",
    "--warmup-epochs",
    "0.5",
    "--samples-per-class",
    "1",
    "--num-iter",
    "2",
    "--diffusion-steps",
    "2",
    "--classifier-steps",
    "10",
    "--quality-samples",
    "20",
    "--no-progress",
]
TOY = TOY_GENERATOR + TOY_TOKENIZER
