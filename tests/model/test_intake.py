import io

import numpy as np
import pytest
from PIL import Image

from model.intake import ImageError, decode_image


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=2))


def test_jpeg_decodes_to_rgb_array():
    rgb = decode_image(encode(gradient(), "JPEG"))
    assert rgb.shape == (48, 64, 3)
    assert rgb.dtype == np.uint8


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not_an_image"),
        (b"%PDF-1.4 fake", "not_an_image"),
    ],
)
def test_unusable_bytes_rejected(data, reason):
    with pytest.raises(ImageError) as caught:
        decode_image(data)
    assert caught.value.reason == reason
    assert caught.value.message


def test_truncated_jpeg_rejected():
    data = encode(gradient(256, 256), "JPEG", quality=95)
    with pytest.raises(ImageError) as caught:
        decode_image(data[: len(data) // 2])
    assert caught.value.reason == "corrupt"


def test_decompression_bomb_rejected_before_decoding():
    # A 10,000 x 10,000 PNG of one colour compresses to a few hundred kilobytes.
    bomb = encode(Image.new("L", (10_000, 10_000)), "PNG")
    with pytest.raises(ImageError) as caught:
        decode_image(bomb, max_pixels=20_000_000)
    assert caught.value.reason == "too_large"
    assert "20,000,000" in caught.value.message


def test_cmyk_converted_to_rgb():
    rgb = decode_image(encode(gradient().convert("CMYK"), "JPEG"))
    assert rgb.shape == (48, 64, 3)


def test_16_bit_grey_rescaled_not_clipped():
    values = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    rgb = decode_image(encode(Image.fromarray(values), "PNG"))
    assert rgb.shape == (48, 64, 3)
    assert rgb.min() == 0
    assert rgb.max() == 255
    assert 100 < rgb.mean() < 155  # a ramp, not a white sheet


def test_palette_image_converted():
    rgb = decode_image(encode(gradient().convert("P"), "PNG"))
    assert rgb.shape == (48, 64, 3)


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    rgb = decode_image(encode(image, "PNG"))
    assert (rgb == 255).all()


def test_exif_rotated_photo_made_upright():
    # Stored landscape with orientation 6: a viewer shows it rotated 90 degrees, as a portrait.
    image = gradient(80, 40)
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb = decode_image(encode(image, "JPEG", exif=exif))
    assert rgb.shape[:2] == (80, 40)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (20, 20), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    rgb = decode_image(data)
    assert rgb.shape == (20, 20, 3)
    assert rgb[..., 0].mean() > 200  # red, the first frame
    assert rgb[..., 2].mean() < 50
