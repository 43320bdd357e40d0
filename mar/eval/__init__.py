"""Evaluation at scale: sample sets drawn to disk (PNGs, ADM's .npz) and their Inception scores, streamed."""
