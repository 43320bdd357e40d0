"""torch-fidelity's Inception with seeded random weights, saved to a file: Inception metrics offline, no download."""

from pathlib import Path

import pytest
import torch
from torch_fidelity import feature_extractor_inceptionv3 as fidelity_inception


def random_inception(path: Path, seed: int = 0) -> fidelity_inception.FeatureExtractorInceptionV3:
    """Builds the extractor with random weights (it insists on loading some: both loaders are skipped once) and
    saves its state dict to ``path``, the weights file the code under test is given."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fidelity_inception, "load_state_dict_from_url", lambda *args, **kwargs: None)
        patch.setattr(fidelity_inception.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
        torch.manual_seed(seed)
        extractor = fidelity_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
    for module in extractor.modules():  # torch's default init shrinks activations to ~1e-8 over 90 layers
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.nn.init.normal_(extractor.fc.weight, std=0.5)  # logits that differ between images: an IS above 1
    torch.save(extractor.state_dict(), path)
    return extractor.eval()
