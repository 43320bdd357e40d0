"""The embedded glyph set and the ImageFolder loader."""

import torch
from PIL import Image

from mar.data.glyphs import glyph_dataset
from mar.data.image_folder import ImageFolderDataset, center_crop


def test_glyphs_are_seeded_balanced_and_sized(tmp_path):
    images, labels = glyph_dataset(40, 32, seed=3).tensors
    assert images.shape == (40, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(torch.bincount(labels), torch.full((10,), 4))
    assert torch.equal(images, glyph_dataset(40, 32, seed=3).tensors[0])
    assert not torch.equal(images, glyph_dataset(40, 32, seed=4).tensors[0])
    cached = glyph_dataset(40, 32, seed=3, cache_dir=tmp_path)
    assert torch.equal(glyph_dataset(40, 32, seed=3, cache_dir=tmp_path).tensors[0], cached.tensors[0])
    assert torch.equal(cached.tensors[0], images)
    assert glyph_dataset(10, 64, seed=0).tensors[0].shape == (10, 3, 64, 64)


def test_center_crop_keeps_the_middle():
    image = Image.new("RGB", (60, 30), "red")
    image.paste(Image.new("RGB", (30, 30), "blue"), (15, 0))  # a blue square in the middle of a wide image
    crop = center_crop(image, 16)
    assert crop.size == (16, 16)
    assert crop.getpixel((8, 8)) == (0, 0, 255) and crop.getpixel((0, 0))[2] > 200


def test_image_folder_classes_and_flips(tmp_path):
    for name in ["b", "a"]:
        (tmp_path / name).mkdir()
        image = Image.new("RGB", (20, 20), "black")
        image.paste(Image.new("RGB", (10, 20), "white"), (0, 0))  # left half white
        image.save(tmp_path / name / "x.png")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    dataset = ImageFolderDataset(tmp_path, 16, flip=True)
    assert dataset.classes == ["a", "b"] and len(dataset) == 2
    torch.manual_seed(0)
    left_bright = [dataset[0][0][:, :, :8].mean() > dataset[0][0][:, :, 8:].mean() for _ in range(40)]
    assert 5 < sum(left_bright) < 35  # mirrored about half the time
    assert all(ImageFolderDataset(tmp_path, 16, flip=False)[1][0][:, :, 0].mean() > 0.9 for _ in range(3))
