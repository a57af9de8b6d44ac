"""Query cost controls: the first pass votes with a regular sample of the photo's CNN cells, and the
HNSW search breadth grows with the index."""

import numpy as np

from model.recognizer import _grid_sample


def grid_points(rows: int, columns: int, stride: float = 16.0) -> np.ndarray:
    r, c = np.mgrid[0:rows, 0:columns]
    return (np.stack([c.ravel(), r.ravel()], axis=1).astype(np.float32) + 0.5) * stride


def test_grid_sample_step_two():
    points = grid_points(6, 8)

    mask = _grid_sample(points, 2)

    assert mask.sum() == 12
    selected = points[mask]
    # Every 2x2 block of the grid keeps exactly one cell.
    blocks = {(int(x // 32), int(y // 32)) for x, y in selected}
    assert len(blocks) == 12


def test_grid_sample_step_one_and_empty():
    points = grid_points(3, 5)
    assert _grid_sample(points, 1).all()
    assert _grid_sample(np.zeros((0, 2), np.float32), 3).shape == (0,)


def test_grid_sample_odd_grid():
    points = grid_points(5, 7)

    mask = _grid_sample(points, 3)

    # Columns 1 and 4, rows 1 and 4: the centres of full 3x3 blocks.
    assert sorted({float(x) for x in points[mask][:, 0]}) == [24.0, 72.0]
    assert sorted({float(y) for y in points[mask][:, 1]}) == [24.0, 72.0]


def test_search_breadth_growth():
    from model.recognizer import search_breadth

    assert search_breadth(32, 0) == 32
    assert search_breadth(32, 1_000_000) == 32
    # 8 times the descriptors: 8 ** 0.75 = 4.76 times the breadth.
    assert search_breadth(32, 8_000_000) == 152
    sizes = [1_500_000, 3_000_000, 6_000_000, 12_000_000]
    breadths = [search_breadth(32, n) for n in sizes]
    assert breadths == sorted(breadths)
    assert len(set(breadths)) == 4
