"""Painting localisation: find framed quadrilaterals in a photo and rectify them to a frontal view.

Paintings hang in frames that contrast with the wall, so their outlines are long closed edges that
simplify to four corners. Each outline found is warped to a rectangle whose aspect ratio estimates the
painting's, which removes the perspective of a photo taken from the side.
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_SIDE = 640  # outlines are found on a copy of this size: frames are large, detail is noise here


def order_corners(points: np.ndarray) -> np.ndarray:
    """Order four corners as top-left, top-right, bottom-right, bottom-left."""
    corners = np.asarray(points, np.float32).reshape(4, 2)
    sums = corners.sum(axis=1)
    diffs = corners[:, 1] - corners[:, 0]
    return np.array(
        [corners[np.argmin(sums)], corners[np.argmin(diffs)], corners[np.argmax(sums)], corners[np.argmax(diffs)]],
        np.float32,
    )


def find_quadrilaterals(
    rgb: np.ndarray, min_area: float = 0.02, max_area: float = 0.9, max_count: int = 6
) -> list[np.ndarray]:
    """Return up to `max_count` painting outlines, largest first, as (4, 2) corners in image pixels.

    `min_area` and `max_area` are fractions of the image area.
    """
    height, width = rgb.shape[:2]
    scale = WORK_SIDE / max(height, width)
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (5, 5), 0)
    image_area = small.shape[0] * small.shape[1]

    # Two edge thresholds: one relative to the photo's brightness, one fixed and low for dim rooms.
    median = float(np.median(gray))
    candidates: list[np.ndarray] = []
    for low, high in ((0.66 * median, 1.33 * median), (20.0, 60.0)):
        edges = cv2.dilate(cv2.Canny(gray, low, high), np.ones((3, 3), np.uint8))
        contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            quad = _contour_to_quad(contour, min_area * image_area, max_area * image_area)
            if quad is not None:
                candidates.append(quad / scale)

    candidates.sort(key=lambda quad: -cv2.contourArea(quad))
    # Non-maximum suppression: the two edge thresholds often find the same outline twice.
    distinct: list[np.ndarray] = []
    for quad in candidates:
        if all(_box_iou(quad, other) < 0.7 for other in distinct):
            distinct.append(quad)
        if len(distinct) == max_count:
            break
    return distinct


def rectify(rgb: np.ndarray, quad: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Warp the quadrilateral to a frontal rectangle whose longer side is `side` pixels.

    Returns the rectified image and the 3x3 transform from photo pixels to rectified pixels.
    """
    top_left, top_right, bottom_right, bottom_left = order_corners(quad)
    width = max(np.linalg.norm(top_right - top_left), np.linalg.norm(bottom_right - bottom_left))
    height = max(np.linalg.norm(bottom_left - top_left), np.linalg.norm(bottom_right - top_right))
    scale = side / max(width, height, 1.0)
    out_width, out_height = max(8, round(width * scale)), max(8, round(height * scale))

    target = np.array([[0, 0], [out_width - 1, 0], [out_width - 1, out_height - 1], [0, out_height - 1]], np.float32)
    transform = cv2.getPerspectiveTransform(order_corners(quad), target)
    warped = cv2.warpPerspective(rgb, transform, (out_width, out_height), flags=cv2.INTER_LINEAR)
    return warped, transform


def project_outline(homography: np.ndarray, width: int, height: int) -> np.ndarray:
    """Project a reference image's corners through a homography into the photo."""
    corners = np.array([[[0, 0]], [[width, 0]], [[width, height]], [[0, height]]], np.float32)
    return cv2.perspectiveTransform(corners, homography).reshape(4, 2)


def _contour_to_quad(contour: np.ndarray, min_area: float, max_area: float) -> np.ndarray | None:
    area = cv2.contourArea(contour)
    if not min_area <= area <= max_area:
        return None
    hull = cv2.convexHull(contour)
    approx = cv2.approxPolyDP(hull, 0.03 * cv2.arcLength(hull, True), True)
    if len(approx) == 4:
        quad = order_corners(approx)
    else:
        # Octagonal or rounded frames: accept the bounding rectangle of a nearly rectangular shape.
        rect = cv2.minAreaRect(hull)
        if area < 0.85 * rect[1][0] * rect[1][1]:
            return None
        quad = order_corners(cv2.boxPoints(rect))
    if cv2.contourArea(quad) < 0.8 * cv2.contourArea(hull):
        return None
    sides = np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1)
    if max(sides) > 5 * min(sides):
        return None  # a strip (a shelf, a door edge), not a painting
    return quad


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ax, ay, aw, ah = cv2.boundingRect(a.astype(np.int32))
    bx, by, bw, bh = cv2.boundingRect(b.astype(np.int32))
    inter_w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    inter_h = max(0, min(ay + ah, by + bh) - max(ay, by))
    intersection = inter_w * inter_h
    union = aw * ah + bw * bh - intersection
    return intersection / union if union else 0.0
