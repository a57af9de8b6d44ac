"""Painting uploads from the dashboard: check the image and store an upright RGB JPEG of it.

Storing a normalised copy means every stored image opens in every browser (CMYK, 16-bit, TIFF
and alpha images do not all do so) and is already turned upright by its EXIF orientation.
"""

from __future__ import annotations

import io

from PIL import Image

from model.intake import ImageError, decode_image

JPEG_QUALITY = 92
# The status a dashboard upload gets for each model.intake.ImageError reason.
IMAGE_ERROR_STATUS = {"too_large": 413, "empty": 400}


def normalise_image(data: bytes, max_pixels: int) -> bytes:
    """Decode an uploaded image and return it as an upright RGB JPEG.

    Raises model.intake.ImageError for empty, unreadable, truncated or oversized images.
    Animated images keep their first frame.
    """
    pixels = decode_image(data, max_pixels)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


__all__ = ["IMAGE_ERROR_STATUS", "ImageError", "normalise_image"]
