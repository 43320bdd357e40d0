"""The feature classifier behind the offline metrics: it learns the classes, is trained once and reused, and the
metrics in its feature space rank real images above damaged ones."""

import pytest
import torch

import mar.eval.classifier as classifier_module
from mar.data.glyphs import glyph_dataset
from mar.eval.classifier import classifier_for, predict
from mar.eval.quality import reference_set, sample_metrics

DEVICE = torch.device("cpu")


@pytest.fixture(scope="module")
def glyphs(tmp_path_factory):
    cache = tmp_path_factory.mktemp("glyphs")
    return glyph_dataset(600, 32, seed=0, cache_dir=cache).tensors, glyph_dataset(
        200, 32, seed=1, cache_dir=cache
    ).tensors


@pytest.fixture(scope="module")
def trained(glyphs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("classifier")
    classifier, info = classifier_for(
        folder, glyphs[0], glyphs[1], "glyphs-test", 10, steps=150, device=DEVICE, progress=False
    )
    return folder, classifier, info


@pytest.mark.slow
def test_learns_the_classes_and_reports_its_test_accuracy(glyphs, trained):
    _, classifier, info = trained
    assert info["test_accuracy"] > 0.7  # chance is 0.1; 0.885 when written
    features, predicted = predict(classifier, glyphs[1][0])
    assert features.shape == (200, classifier.config.feature_dim)
    assert info["test_accuracy"] == pytest.approx((predicted == glyphs[1][1]).float().mean().item())


def test_is_trained_once_and_reused(glyphs, trained, monkeypatch):
    folder, classifier, info = trained
    monkeypatch.setattr(
        classifier_module, "train_classifier", lambda *a, **k: pytest.fail("retrained a kept classifier")
    )
    again, info_again = classifier_for(folder, glyphs[0], glyphs[1], "glyphs-test", 10, steps=150, device=DEVICE)
    assert info_again == info
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), classifier.state_dict().values()))


def test_other_data_or_length_trains_a_new_one(glyphs, trained, monkeypatch):
    folder = trained[0]
    calls = []
    monkeypatch.setattr(classifier_module, "train_classifier", lambda model, *a, **k: calls.append(1) or model.eval())
    classifier_for(folder, glyphs[0], glyphs[1], "other-glyphs", 10, steps=150, device=DEVICE)
    classifier_for(folder, glyphs[0], glyphs[1], "other-glyphs", 10, steps=151, device=DEVICE)
    assert len(calls) == 2


def test_metrics_rank_real_images_above_damaged_ones(glyphs, trained):
    _, classifier, info = trained
    (train_images, train_labels), (test_images, _) = glyphs
    reference = reference_set(classifier, test_images)
    real = sample_metrics(classifier, reference, train_images[:200], train_labels[:200])
    itself = sample_metrics(classifier, reference, test_images, glyphs[1][1])
    blurred = torch.nn.functional.avg_pool2d(train_images[:200], 4).repeat_interleave(4, -1).repeat_interleave(4, -2)
    damaged = sample_metrics(classifier, reference, blurred, train_labels[:200])
    assert itself["fid"] < 1e-6 and itself["precision"] == 1.0 and itself["recall"] == 1.0
    assert damaged["fid"] > 2 * real["fid"]
    assert damaged["accuracy"] < real["accuracy"] and real["accuracy"] > 0.6
