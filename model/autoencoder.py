"""The convolutional autoencoder of the original design.

Encoder: six 3x3 stride-2 convolutions, 3->16->32->64->128->256->512 channels, each followed by
ReLU. Decoder: the mirror image with transposed convolutions. A 256x256 input becomes a 512x4x4
code; the embedding is that code averaged over space and L2-normalised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.backbone import IMAGENET_MEAN, IMAGENET_STD

ENCODER_CHANNELS = (3, 16, 32, 64, 128, 256, 512)
INPUT_SIZE = 256


class ConvAutoencoder(nn.Module):
    """Symmetric convolutional autoencoder trained with a reconstruction (MSE) loss."""

    def __init__(self) -> None:
        super().__init__()
        encoder: list[nn.Module] = []
        for in_channels, out_channels in zip(ENCODER_CHANNELS, ENCODER_CHANNELS[1:]):
            encoder += [nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = []
        reversed_channels = ENCODER_CHANNELS[::-1]
        for in_channels, out_channels in zip(reversed_channels, reversed_channels[1:]):
            decoder += [
                nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1),
                nn.ReLU(inplace=True),
            ]
        # The reconstruction target is ImageNet-normalised, so it can be negative: no final ReLU.
        self.decoder = nn.Sequential(*decoder[:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return L2-normalised embeddings of shape (batch, 512)."""
        code = self.encoder(x)
        return F.normalize(code.mean(dim=(2, 3)), dim=1)


class AutoencoderEncoder:
    """Inference wrapper: RGB uint8 image in, 512-d embedding out."""

    embedding_dim = ENCODER_CHANNELS[-1]

    def __init__(self, model: ConvAutoencoder) -> None:
        self._model = model.eval()
        self._mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "AutoencoderEncoder":
        """Load the `model` state dict from a checkpoint written by the trainer."""
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = ConvAutoencoder()
        model.load_state_dict(checkpoint["model"])
        return cls(model)

    @torch.no_grad()
    def embed(self, rgb_square: np.ndarray) -> np.ndarray:
        """Embed an RGB uint8 image that is already INPUT_SIZE x INPUT_SIZE."""
        x = torch.from_numpy(rgb_square).permute(2, 0, 1).float().unsqueeze(0) / 255.0
        x = (x - self._mean) / self._std
        return self._model.embed(x)[0].numpy().astype(np.float32)
