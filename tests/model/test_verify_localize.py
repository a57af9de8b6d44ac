import cv2
import numpy as np

from model.localize import find_quadrilaterals, order_corners, rectify
from model.synthetic import photograph, render_painting
from model.verify import fit_homography, mutual_nearest, mutual_nearest_many


def test_homography_recovered_from_noisy_correspondences():
    rng = np.random.default_rng(0)
    true = np.array([[0.8, 0.1, 40.0], [-0.05, 0.9, 30.0], [0.0002, 0.0001, 1.0]])
    reference = rng.uniform(0, 500, (80, 2)).astype(np.float32)
    photo = cv2.perspectiveTransform(reference.reshape(-1, 1, 2), true).reshape(-1, 2)
    photo[:20] = rng.uniform(0, 500, (20, 2))  # a quarter are wrong matches

    found = fit_homography(reference, photo, threshold=3.0, reference_size=(500, 500), photo_size=(600, 600))
    assert found is not None
    assert 55 <= found.inliers <= 62
    assert np.allclose(found.homography / found.homography[2, 2], true, atol=0.02)


def test_mirrored_fit_rejected():
    reference = np.array([[x, y] for x in range(0, 400, 40) for y in range(0, 400, 40)], np.float32)
    mirrored = reference.copy()
    mirrored[:, 0] = 500 - mirrored[:, 0]
    assert fit_homography(reference, mirrored, 3.0, (400, 400), (600, 600)) is None


def test_too_few_correspondences_give_nothing():
    points = np.zeros((5, 2), np.float32)
    assert fit_homography(points, points, 3.0, (100, 100), (100, 100)) is None


def test_mutual_nearest_pairs_match_single_and_batched():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(40, 16)).astype(np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    query = reference[[5, 9, 30]] + 0.01

    query_ids, reference_ids = mutual_nearest(query, reference)
    assert reference_ids.tolist() == [5, 9, 30]
    batched = mutual_nearest_many(query, [reference[:20], reference[20:]])
    assert dict(zip(*batched[0]))[0] == 5
    assert dict(zip(*batched[0]))[1] == 9
    assert dict(zip(*batched[1]))[2] == 10


def test_ratio_test_drops_ambiguous_pairs():
    query = np.array([[1.0, 0.0, 0.0]], np.float32)
    twins = np.array([[0.9, 0.3, 0.0], [0.9, 0.0, 0.3]], np.float32)  # equally near: ambiguous
    twins /= np.linalg.norm(twins, axis=1, keepdims=True)
    assert len(mutual_nearest_many(query, [twins], ratio=0.9)[0][0]) == 0
    assert len(mutual_nearest_many(query, [twins], ratio=1.0)[0][0]) == 1


def test_framed_painting_found_and_rectified():
    painting = render_painting(42, size=(400, 300))
    photo = photograph(painting, seed=42, tilt=0.12, scale=0.6, glare=False)
    quads = find_quadrilaterals(photo)
    assert quads, "no outline found around the framed painting"

    height, width = photo.shape[:2]
    largest = order_corners(quads[0])
    span_x = largest[:, 0].max() - largest[:, 0].min()
    span_y = largest[:, 1].max() - largest[:, 1].min()
    assert 0.35 * width < span_x < 0.75 * width
    assert 0.45 * height < span_y < 0.75 * height

    rectified, transform = rectify(photo, quads[0], side=256)
    assert max(rectified.shape[:2]) == 256
    assert transform.shape == (3, 3)


def test_blank_wall_has_no_outline():
    assert find_quadrilaterals(np.full((480, 640, 3), 190, np.uint8)) == []
