"""Generated paintings and simulated phone photos of them.

Tests use them as fixtures that need nothing outside the repository, and the scaling benchmark uses
them as distractor paintings. A rendered painting is a seeded random composition of colour fields,
shapes and brush-like strokes, detailed enough for local features. `photograph` hangs it in a frame on
a wall and shoots it the way a visitor does. The shot is at an angle and off-centre, with uneven
light, glare, blur, sensor noise and JPEG compression.
"""

from __future__ import annotations

import cv2
import numpy as np


def render_painting(seed: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """Render a distinct RGB uint8 "painting" for each seed; `size` is (width, height)."""
    rng = np.random.default_rng(seed)
    if size is None:
        width = 570
        height = int(width * rng.uniform(0.7, 1.45))
    else:
        width, height = size

    # A smooth colour field: low-resolution noise scaled up.
    coarse = rng.uniform(0, 255, (rng.integers(2, 6), rng.integers(2, 6), 3)).astype(np.float32)
    canvas = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)

    for _ in range(rng.integers(12, 30)):
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        shape = rng.integers(0, 3)
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if shape == 0:
            axes = (int(rng.integers(8, width // 3)), int(rng.integers(8, height // 3)))
            cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        elif shape == 1:
            points = rng.integers(0, [width, height], size=(int(rng.integers(3, 7)), 2)).astype(np.int32)
            cv2.fillPoly(canvas, [points], colour, cv2.LINE_AA)
        else:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(canvas, centre, end, colour, int(rng.integers(2, 14)), cv2.LINE_AA)

    # Brush texture: fine strokes that give local features something to hold on to.
    for _ in range(rng.integers(150, 400)):
        start = rng.integers(0, [width, height])
        direction = rng.normal(0, 1, 2)
        end = start + (direction / (np.linalg.norm(direction) + 1e-6) * rng.uniform(5, 40)).astype(int)
        shade = canvas[min(start[1], height - 1), min(start[0], width - 1)] * rng.uniform(0.5, 1.5)
        cv2.line(canvas, tuple(int(v) for v in start), tuple(int(v) for v in end), shade.tolist(), int(rng.integers(1, 4)))

    grain = rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    return np.clip(canvas + grain, 0, 255).astype(np.uint8)


def photograph(
    painting: np.ndarray,
    seed: int,
    tilt: float = 0.15,
    scale: float = 0.6,
    glare: bool = True,
    blur: float = 1.0,
    exposure: float = 1.0,
    jpeg_quality: int = 80,
    output_size: tuple[int, int] = (1024, 768),
) -> np.ndarray:
    """Simulate a phone photo of the painting in a frame on a wall; returns RGB uint8 (height, width, 3).

    `tilt` is the perspective strength (0 is frontal), `scale` the painting's share of the photo's
    height, `exposure` a brightness factor.
    """
    rng = np.random.default_rng(seed)
    out_width, out_height = output_size

    # Frame: a border of gilded brown around the canvas.
    border = max(6, painting.shape[0] // 14)
    frame_colour = (int(rng.integers(120, 200)), int(rng.integers(90, 150)), int(rng.integers(30, 80)))
    framed = cv2.copyMakeBorder(painting, border, border, border, border, cv2.BORDER_CONSTANT, value=frame_colour)

    wall = np.full((out_height, out_width, 3), rng.integers(150, 235, 3), np.float32)
    wall += rng.normal(0, 4, wall.shape)

    height, width = framed.shape[:2]
    target_height = scale * out_height
    target_width = target_height * width / height
    centre_x = out_width / 2 + rng.uniform(-0.15, 0.15) * out_width
    centre_y = out_height / 2 + rng.uniform(-0.1, 0.1) * out_height
    left, right = centre_x - target_width / 2, centre_x + target_width / 2
    top, bottom = centre_y - target_height / 2, centre_y + target_height / 2

    # Perspective: one side of the painting is nearer the camera and looks taller.
    shrink = tilt * target_height * rng.choice([-1, 1])
    corners = np.array(
        [
            [left, top + max(shrink, 0)],
            [right, top + max(-shrink, 0)],
            [right, bottom - max(-shrink, 0)],
            [left, bottom - max(shrink, 0)],
        ],
        np.float32,
    )
    corners += rng.normal(0, 0.01 * out_height, corners.shape).astype(np.float32)
    source = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    transform = cv2.getPerspectiveTransform(source, corners)
    warped = cv2.warpPerspective(framed.astype(np.float32), transform, (out_width, out_height))
    mask = cv2.warpPerspective(np.ones((height, width), np.float32), transform, (out_width, out_height))
    photo = wall * (1 - mask[..., None]) + warped * mask[..., None]

    # Light: a gradient across the room, and a glare spot on the varnish.
    gradient = np.linspace(rng.uniform(0.75, 1.0), rng.uniform(1.0, 1.2), out_width, dtype=np.float32)
    photo *= gradient[None, :, None] * exposure
    if glare:
        glare_map = np.zeros((out_height, out_width), np.float32)
        spot = (int(rng.uniform(left, right)), int(rng.uniform(top, bottom)))
        cv2.circle(glare_map, spot, int(0.06 * out_height), 1.0, -1)
        glare_map = cv2.GaussianBlur(glare_map, (0, 0), 0.04 * out_height)
        photo += 160 * glare_map[..., None]

    if blur > 0:
        photo = cv2.GaussianBlur(photo, (0, 0), blur)
    photo += rng.normal(0, 3, photo.shape)
    photo = np.clip(photo, 0, 255).astype(np.uint8)

    ok, encoded = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED) if ok else photo
