"""The backbone gives the same descriptors through ONNX Runtime as through torch."""

import numpy as np
import pytest

from model.backbone import BackboneError, load_backbone
from model.synthetic import render_painting


@pytest.fixture(scope="module")
def torch_backbone():
    return load_backbone(runtime="torch")


# Odd sizes and a thin strip check that the exported graph pads like the torch module at any size.
@pytest.mark.parametrize("height, width", [(576, 768), (383, 511), (160, 1001)])
def test_onnxruntime_matches_torch(backbone, torch_backbone, height, width):
    assert backbone.runtime == "onnxruntime"
    image = render_painting(7, size=(width, height))

    fast_map, fast_embedding = backbone.dense_and_embedding(image)
    slow_map, slow_embedding = torch_backbone.dense_and_embedding(image)

    assert (fast_map.grid_height, fast_map.grid_width) == (slow_map.grid_height, slow_map.grid_width)
    # Unit vectors: a cosine above 0.9999 is the same descriptor up to float rounding.
    cosines = np.sum(fast_map.descriptors * slow_map.descriptors, axis=1)
    assert cosines.min() > 0.9999
    assert float(np.dot(fast_embedding, slow_embedding)) > 0.9999


def test_unknown_runtime_is_rejected():
    with pytest.raises(BackboneError, match="unknown runtime 'tensorrt': use 'onnxruntime' or 'torch'"):
        load_backbone(runtime="tensorrt")


def test_missing_onnxruntime_names_the_packages(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_onnxruntime)
    with pytest.raises(BackboneError, match="needs the packages onnx and onnxruntime.*engine.runtime to 'torch'"):
        load_backbone()
