"""Local features: RootSIFT keypoints and CNN dense cells, both with positions in image pixels.

The two complement each other on museum photos. SIFT is scale invariant and precise, so it finds
small paintings in wide gallery shots; CNN cells are coarse but survive the blur, glare and dim light
that leave SIFT with nothing to match.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model.backbone import Backbone


@dataclass
class LocalFeatures:
    """Keypoint positions (n, 2) in the pixels of the image they came from, and descriptors (n, d)."""

    points: np.ndarray
    descriptors: np.ndarray

    def __len__(self) -> int:
        return len(self.points)

    @classmethod
    def empty(cls, dim: int) -> "LocalFeatures":
        return cls(np.zeros((0, 2), np.float32), np.zeros((0, dim), np.float32))


def resize_to_side(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """Scale an image so its longer side is `side` pixels; return the image and the scale factor."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if abs(scale - 1.0) < 1e-3:
        return image, 1.0
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, new_size, interpolation=interpolation), scale


class SiftExtractor:
    """RootSIFT on a contrast-equalised grey image scaled to a fixed longer side.

    Scaling up small crops as well as down large photos keeps painting detail at a similar pixel
    scale for queries and references. CLAHE lifts the dark varnish and dim rooms that otherwise give
    SIFT too few keypoints.
    """

    dim = 128

    def __init__(self, side: int, max_features: int, contrast_threshold: float = 0.04) -> None:
        self.side = side
        self.max_features = max_features
        self._sift = cv2.SIFT_create(nfeatures=max_features, contrastThreshold=contrast_threshold)
        self._clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))

    def extract(self, rgb: np.ndarray) -> LocalFeatures:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        gray, scale = resize_to_side(gray, self.side)
        gray = self._clahe.apply(gray)
        keypoints, descriptors = self._sift.detectAndCompute(gray, None)
        if descriptors is None or not keypoints:
            return LocalFeatures.empty(self.dim)

        # RootSIFT: L1-normalise then square-root, so Euclidean distance compares histograms with
        # the Hellinger kernel, which matches better than raw SIFT.
        descriptors = descriptors / (descriptors.sum(axis=1, keepdims=True) + 1e-7)
        descriptors = np.sqrt(descriptors).astype(np.float32)
        points = np.array([kp.pt for kp in keypoints], np.float32) / scale
        return LocalFeatures(points, descriptors)


class DenseExtractor:
    """CNN dense cells of an image scaled to a fixed longer side, plus the global embedding."""

    def __init__(self, backbone: Backbone, side: int) -> None:
        self.backbone = backbone
        self.side = side
        self.dim = backbone.dense_dim

    # The deepest 5x5 convolutions work at 1/32 of the input, so a narrower input breaks them.
    MIN_SHORT_SIDE = 160

    def extract(self, rgb: np.ndarray, side: int | None = None) -> tuple[LocalFeatures, np.ndarray]:
        """Describe the image scaled to `side` (default: the extractor's side) on its longer side."""
        scaled, scale = resize_to_side(rgb, side or self.side)
        short_side = min(scaled.shape[:2])
        if short_side < self.MIN_SHORT_SIDE:
            # Pad a long thin image at the bottom and right; the padding's cells match nothing.
            pad_bottom = max(0, self.MIN_SHORT_SIDE - scaled.shape[0])
            pad_right = max(0, self.MIN_SHORT_SIDE - scaled.shape[1])
            scaled = cv2.copyMakeBorder(scaled, 0, pad_bottom, 0, pad_right, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        dense, embedding = self.backbone.dense_and_embedding(scaled)

        # Each cell's position is its centre, mapped back to the pixels of the input image.
        rows, cols = np.mgrid[0 : dense.grid_height, 0 : dense.grid_width]
        centres = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float32) + 0.5
        points = centres * (dense.stride / scale)
        return LocalFeatures(points, dense.descriptors), embedding
