"""Geometric verification: does a planar painting map onto the photo through one homography?

Tentative correspondences come from descriptor search; MAGSAC++ (OpenCV's USAC) keeps the ones that
agree with a single perspective transform. A painting is flat, so its true matches always do, while
chance matches scatter. The number of agreeing matches (inliers) is the evidence for a painting.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from model.localize import project_outline

MIN_CORRESPONDENCES = 8


@dataclass(frozen=True)
class Verification:
    inliers: int
    correspondences: int
    homography: np.ndarray  # reference pixels -> photo pixels
    outline: np.ndarray  # the reference's corners in photo pixels, (4, 2)


def mutual_nearest(query: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return index pairs (query_i, reference_j) that are each other's nearest neighbour.

    Both inputs are L2-normalised, so the largest dot product is the nearest neighbour.
    """
    return mutual_nearest_many(query, [reference])[0]


def mutual_nearest_many(
    query: np.ndarray, references: list[np.ndarray], ratio: float = 1.0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run `mutual_nearest` against several references with one matrix product.

    With `ratio` < 1, a pair is also dropped when the query's second-nearest cell of that reference
    is almost as near (Lowe's ratio test on distances). Gilded frames and plain backgrounds repeat
    the same cell many times and give such ambiguous pairs.
    """
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if len(query) == 0 or sum(map(len, references)) == 0:
        return [empty for _ in references]

    # torch rather than numpy: its column-wise argmax over a wide matrix was about ten times faster
    # here (30 ms against 350 ms for 1,728 x 16,000 similarities on 2 cores).
    # One product for all references. Per reference block, `topk` along rows gives each query cell's
    # two nearest reference cells, and `max` down columns each reference cell's nearest query cell.
    # These took about half the time of two argmax calls (14 against 26 ms for 1,728 x 3,700
    # similarities on 2 cores).
    with torch.no_grad():
        stacked = torch.from_numpy(np.ascontiguousarray(np.concatenate(references), dtype=np.float32))
        similarity = torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32)) @ stacked.T
        every_query = torch.arange(len(query))
        results = []
        start = 0
        for reference in references:
            block = similarity[:, start : start + len(reference)]
            start += len(reference)
            if len(reference) == 0:
                results.append(empty)
                continue
            nearest_two = block.topk(min(2, len(reference)), dim=1)
            best_reference = nearest_two.indices[:, 0]
            best_query = block.max(dim=0).indices
            query_ids = torch.nonzero(best_query[best_reference] == every_query).flatten()
            if ratio < 1.0 and len(reference) > 1 and len(query_ids):
                top_two = nearest_two.values[query_ids]
                nearest = (2.0 - 2.0 * top_two[:, 0]).clamp(min=0.0).sqrt()
                second = (2.0 - 2.0 * top_two[:, 1]).clamp(min=1e-12).sqrt()
                query_ids = query_ids[nearest < ratio * second]
            results.append((query_ids.numpy().astype(np.int64), best_reference[query_ids].numpy().astype(np.int64)))
    return results


def fit_homography(
    reference_points: np.ndarray,
    photo_points: np.ndarray,
    threshold: float,
    reference_size: tuple[int, int],
    photo_size: tuple[int, int],
    distinct_cell: float = 0.0,
) -> Verification | None:
    """Fit reference -> photo with MAGSAC++ and keep it only if it is a plausible view of a painting.

    With `distinct_cell` > 0, inliers are counted once per occupied cell of that size (pixels) on
    each side, for keypoints that can cluster; CNN cells form a grid and need no such count.
    """
    if len(reference_points) < MIN_CORRESPONDENCES:
        return None
    homography, mask = cv2.findHomography(
        reference_points.astype(np.float32),
        photo_points.astype(np.float32),
        cv2.USAC_MAGSAC,
        threshold,
        maxIters=2000,
        confidence=0.999,
    )
    if homography is None or mask is None:
        return None

    width, height = reference_size
    outline = project_outline(homography, width, height)
    if not _is_plausible_view(outline, photo_size):
        return None

    inlier_mask = mask.ravel() > 0
    if distinct_cell > 0:
        inliers = _distinct_inliers(reference_points[inlier_mask], photo_points[inlier_mask], distinct_cell)
    else:
        inliers = int(inlier_mask.sum())
    return Verification(inliers=inliers, correspondences=len(reference_points), homography=homography, outline=outline)


def _is_plausible_view(outline: np.ndarray, photo_size: tuple[int, int]) -> bool:
    """Reject homographies that fold, mirror or shrink the painting to a sliver: chance fits do."""
    if not cv2.isContourConvex(outline.astype(np.float32).reshape(-1, 1, 2)):
        return False

    # A real view keeps the order of a painting's corners, but a mirror image reverses it. OpenCV's
    # oriented area is positive for the reference's own corner order, so a mirror gives a negative one.
    area = cv2.contourArea(outline.astype(np.float32), oriented=True)
    if area <= 0:
        return False

    photo_width, photo_height = photo_size
    if area < 0.0005 * photo_width * photo_height:
        return False

    # Opposite sides of a painting seen in perspective stay within a factor of a few of each other.
    sides = np.linalg.norm(np.roll(outline, -1, axis=0) - outline, axis=1)
    if min(sides[0], sides[2]) * 6 < max(sides[0], sides[2]) or min(sides[1], sides[3]) * 6 < max(sides[1], sides[3]):
        return False
    return True


def _distinct_inliers(reference_points: np.ndarray, photo_points: np.ndarray, cell: float) -> int:
    """Count inliers once per occupied cell on both sides, so clusters of near-duplicates count once."""
    if len(reference_points) == 0:
        return 0
    cell = max(cell, 1.0)
    reference_cells = {tuple(p) for p in np.floor(reference_points / cell).astype(np.int64)}
    photo_cells = {tuple(p) for p in np.floor(photo_points / cell).astype(np.int64)}
    return min(len(reference_cells), len(photo_cells), len(reference_points))
