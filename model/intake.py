"""Image intake: turn uploaded bytes into an upright 8-bit RGB array.

Every image that reaches the engine, whether a painting upload or a visitor's photo, passes through
`decode_image`, so the checks here are the only defence against hostile or odd files.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 50_000_000


class ImageError(ValueError):
    """An image that cannot be used, with a message that names the problem and the fix."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes into an upright RGB uint8 array of shape (height, width, 3).

    Raises ImageError for empty, unreadable, truncated or oversized input.
    """
    if not data:
        raise ImageError("empty", "the image is empty; send the bytes of a JPEG, PNG, WebP or GIF photo")

    # Pillow warns at half its own bomb limit and raises at the full limit. The size check below
    # replaces both, so the header is read with Pillow's limit lifted.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError(
                "not_an_image", "the data is not an image Pillow can read; send a JPEG, PNG, WebP or GIF photo"
            ) from None
        except Image.DecompressionBombError:
            raise _too_large(None, max_pixels) from None

    width, height = image.size
    if width * height > max_pixels:
        raise _too_large((width, height), max_pixels)
    if width < 1 or height < 1:
        raise ImageError("empty", "the image has no pixels; send a real photo")

    try:
        # Animated GIF, WebP and APNG: the first frame is the picture a visitor means.
        image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
        return _to_rgb_array(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(
            "corrupt", f"the image is truncated or corrupt: {exc}; upload the complete file again"
        ) from None


def _too_large(size: tuple[int, int] | None, max_pixels: int) -> ImageError:
    dimensions = f"{size[0]}x{size[1]} pixels" if size else "too many pixels"
    return ImageError(
        "too_large",
        f"the image has {dimensions}, over the limit of {max_pixels:,} pixels; resize the photo and try again",
    )


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Pillow's own conversion clips 16-bit and float data to 0..255, which turns most
        # 16-bit photos white, so rescale the real value range instead.
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
        gray = scaled.astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)

    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # Transparent areas become white, like a page behind the picture.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)

    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
