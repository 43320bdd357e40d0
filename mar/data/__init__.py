"""Data: the embedded glyphs, image folders, the texture set, latent caches and image grids."""
