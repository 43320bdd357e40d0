"""The toy budget the script tests train at: seconds on a CPU, every stage of train.py exercised."""
TOY = [
    "--num-images", "120", "--tokenizer-steps", "3", "--tokenizer-images", "120", "--epochs", "1",
    "--batch-size", "24", "--warmup-epochs", "0.5", "--samples-per-class", "1", "--num-iter", "2",
    "--diffusion-steps", "2", "--classifier-steps", "10", "--no-progress",
]
