"""Sampling: SamplingConfig, the K-step loop, guidance, completion of known tokens, class grids."""
