"""Sample grids: cells a gap apart, whole row names, and pixels that read back exactly."""

import numpy as np
import pytest
import torch

from mar.data.images import GAP, NAME_PADDING, from_uint8, grid_cells, grid_image, to_uint8


@pytest.mark.parametrize("image_size, zoom", [(32, 2), (8, 2), (64, 1)])
def test_cells_read_back_exactly_and_are_a_white_gap_apart(image_size, zoom):
    images = torch.rand(12, 3, image_size, image_size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    names = ["circle", "crescent", "a-very-long-class-name"]
    picture = grid_image(images, names, zoom)
    assert torch.equal(grid_cells(picture, names, image_size, zoom), from_uint8(to_uint8(images)))
    pixels, side = np.asarray(picture), image_size * zoom
    margin = picture.width - 4 * (side + GAP) + GAP
    assert picture.height == 3 * (side + GAP) - GAP
    for c in range(1, 4):  # the column of white between each pair of cells
        assert (pixels[:, margin + c * (side + GAP) - GAP : margin + c * (side + GAP)] == 255).all()
    for r in range(1, 3):
        assert (pixels[r * (side + GAP) - GAP : r * (side + GAP), margin:] == 255).all()


def test_row_names_are_whole_and_no_taller_than_a_row():
    names = ["circle", "crescent", "a-very-long-class-name"]
    picture = grid_image(torch.zeros(3, 3, 8, 8), names, zoom=2)  # rows of 16 pixels
    pixels = np.asarray(picture)
    margin = picture.width - 16
    ink = np.argwhere((pixels[:, :margin] < 128).all(axis=-1))  # dark text pixels in the margin
    assert ink[:, 1].min() >= NAME_PADDING - 1 and ink[:, 1].max() < margin - NAME_PADDING + 1  # nothing cut
    for r in range(3):  # each row's letters stay within the row
        rows_of_ink = ink[(ink[:, 0] >= r * (16 + GAP)) & (ink[:, 0] < (r + 1) * (16 + GAP))][:, 0]
        assert len(rows_of_ink) and rows_of_ink.max() - rows_of_ink.min() < 16
