"""Evaluation: the feature classifier and metrics, Inception, sample sets drawn to disk and their scores, the comparison."""
