"""The scored points of a run whose schedule a time budget refits (mar/train/quality_log.py)."""

from mar.sampling.config import SamplingConfig
from mar.train.quality_log import QualityLog


def test_a_refitted_schedule_scores_each_point_once(tmp_path):
    log = QualityLog(judge=None, folder=tmp_path, num_classes=10, sampling=SamplingConfig(), count=20, seed=0)
    assert [s for s in range(1, 1001) if log.point_due(s, 1000) is not None] == [250, 500, 750]
    assert log.point_due(1000, 1000) is None  # the end is scored apart
    log.scored.add(log.point_due(250, 1000))  # as score(..., point=) records it
    # stretched to 1200 steps after step 250: its first share falls at step 300 again, but is not scored twice
    assert log.point_due(300, 1200) is None and log.point_due(600, 1200) == 0.5
