"""Training: the loop, optimiser and EMA, checkpoints, recipes, the run folder and its log."""
