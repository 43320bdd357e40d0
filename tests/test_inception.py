"""Inception FID / IS through torch-fidelity, offline, with a random-weight Inception the tests save themselves."""

import math
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("torch_fidelity")
from torch_fidelity import feature_extractor_inceptionv3 as fidelity_inception  # noqa: E402
from torch_fidelity.metric_isc import isc_features_to_metric  # noqa: E402

from mar.data.images import to_uint8  # noqa: E402
from mar.eval.inception import InceptionUnavailable, inception_metrics  # noqa: E402
from mar.eval.metrics import feature_statistics  # noqa: E402


@pytest.fixture(scope="module")
def extractor_and_weights(tmp_path_factory):
    """A random-weight Inception and its state dict saved as a .pth file, built without any download."""
    with pytest.MonkeyPatch.context() as patch:  # the constructor insists on loading weights: skip both loaders once
        patch.setattr(fidelity_inception, "load_state_dict_from_url", lambda *args, **kwargs: None)
        patch.setattr(fidelity_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        torch.manual_seed(0)
        extractor = fidelity_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
    for module in extractor.modules():  # torch's default init shrinks activations to ~1e-8 over 90 layers
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.nn.init.normal_(extractor.fc.weight, std=0.5)  # logits that differ between images: an IS above 1
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(extractor.state_dict(), path)
    return extractor, path


@pytest.fixture(scope="module")
def images():
    return torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1  # (n, 3, s, s) in [-1, 1]


@pytest.fixture(scope="module")
def features(extractor_and_weights, images):
    """Pool features (n, 2048) and unbiased logits (n, 1008) of ``images``, straight from the extractor."""
    extractor, _ = extractor_and_weights
    with torch.no_grad():
        return extractor(to_uint8(images).permute(0, 3, 1, 2))


@pytest.fixture(scope="module")
def reference_npz(features, tmp_path_factory):
    """ADM-style reference statistics of ``images``."""
    mu, sigma = feature_statistics(features[0].numpy())
    path = tmp_path_factory.mktemp("reference") / "reference.npz"
    np.savez(path, mu=mu, sigma=sigma)
    return path


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # 8 samples give a singular 2048-d covariance
def test_fid_is_zero_on_the_reference_set_and_larger_off_it(extractor_and_weights, features, reference_npz, images):
    _, weights = extractor_and_weights
    same = inception_metrics(images, weights, reference_npz, batch_size=3)
    shifted = inception_metrics(images * 0.5 + 0.5, weights, reference_npz)
    assert shifted["inception_fid"] > 1.0
    assert abs(same["inception_fid"]) < 1e-3 * shifted["inception_fid"]
    for metrics in (same, shifted):
        assert set(metrics) == {"inception_fid", "inception_score", "inception_score_std"}
        assert math.isfinite(metrics["inception_score"]) and metrics["inception_score"] > 1.0
        assert math.isfinite(metrics["inception_score_std"]) and metrics["inception_score_std"] >= 0.0

    expected = isc_features_to_metric(features[1], splits=len(images) // 2)  # the unbiased logits; 8 images: 4 splits
    assert same["inception_score"] == pytest.approx(expected["inception_score_mean"], rel=1e-5)
    assert same["inception_score_std"] == pytest.approx(expected["inception_score_std"], rel=1e-4, abs=1e-6)


def test_missing_weights_name_the_path_and_the_file_to_fetch(reference_npz, images, tmp_path):
    for weights in (None, tmp_path / "absent.pth"):
        with pytest.raises(InceptionUnavailable, match="weights-inception-2015-12-05-6726825d.pth") as error:
            inception_metrics(images, weights, reference_npz)
        assert str(weights) in str(error.value) and "\n" not in str(error.value)


def test_missing_or_wrong_reference_names_the_path_and_the_keys(images, tmp_path):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"")  # only its existence is checked before the reference
    for reference in (None, tmp_path / "absent.npz"):
        with pytest.raises(InceptionUnavailable, match="'mu' and 'sigma'") as error:
            inception_metrics(images, weights, reference)
        assert str(reference) in str(error.value)
    wrong = tmp_path / "images_only.npz"
    np.savez(wrong, arr_0=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(InceptionUnavailable, match="arr_0") as error:
        inception_metrics(images, weights, wrong)
    assert str(wrong) in str(error.value) and "\n" not in str(error.value)


def test_without_torch_fidelity_the_message_says_how_to_install_it(images, monkeypatch, tmp_path):
    for name in [name for name in sys.modules if name.split(".")[0] == "torch_fidelity"]:
        monkeypatch.setitem(sys.modules, name, None)  # a None entry makes the import fail, submodules included
    with pytest.raises(InceptionUnavailable, match="pip install torch-fidelity") as error:
        inception_metrics(images, tmp_path / "w.pth", tmp_path / "r.npz")
    assert "\n" not in str(error.value)
