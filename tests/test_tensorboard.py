"""TensorBoard: a training run's event files hold the logged scalars and the sample grids, read back by TensorBoard."""

import io

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mar.train.run_log import read_rows


def test_training_writes_scalars_and_grids_tensorboard_reads(trained_run):
    events = EventAccumulator(str(trained_run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    logged = read_rows(trained_run / "log.csv")
    assert [int(row["step"]) for row in logged] == [2, 4]
    for name in ("loss", "lr", "grad_norm", "images_per_s", "memory_mb"):
        scalars = events.Scalars(f"train/{name}")
        assert [s.step for s in scalars] == [2, 4]
        assert np.allclose([s.value for s in scalars], [float(row[name]) for row in logged], rtol=1e-6)

    during, final = events.Images("samples/during training"), events.Images("samples/final")
    assert [image.step for image in during] == [5] and [image.step for image in final] == [5]
    grid = Image.open(trained_run / "samples.png")
    assert (final[0].width, final[0].height) == grid.size
    stored = Image.open(io.BytesIO(final[0].encoded_image_string)).convert("RGB")
    assert np.array_equal(np.asarray(stored), np.asarray(grid.convert("RGB")))  # PNG in TensorBoard: lossless
