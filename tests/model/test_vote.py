"""Shortlist votes: a descriptor near many stored descriptors must count for little."""

import numpy as np

from model.index import DescriptorIndex
from model.recognizer import _vote

DIM = 32


def unit_rows(rows):
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def near(centre, count, spread, rng):
    return unit_rows(centre + spread * rng.normal(size=(count, DIM)))


def build_index(rng):
    """Index painting 0 with ten distinctive cells, and paintings 1-9 full of one generic texture.

    Painting 1 contains 200 cells of the texture, the others 20 each, so the nearest stored cells of
    a texture cell mostly belong to painting 1.
    """
    texture = unit_rows(rng.normal(size=(1, DIM)))[0]
    distinctive = unit_rows(rng.normal(size=(10, DIM)))
    index = DescriptorIndex(DIM, (-1.0, 1.0))
    index.add(0, np.concatenate([distinctive, unit_rows(rng.normal(size=(20, DIM)))]))
    index.add(1, near(texture, 200, 0.05, rng))
    for key in range(2, 10):
        index.add(key, near(texture, 20, 0.05, rng))
    return index, texture, distinctive


def test_distinctive_cells_outvote_generic_texture():
    rng = np.random.default_rng(5)
    index, texture, distinctive = build_index(rng)
    # A photo of painting 0 that also shows 40 cells of the texture, four times its distinctive cells.
    query = np.concatenate([near(distinctive, 10, 0.01, rng).reshape(-1, DIM), near(texture, 40, 0.05, rng)])

    votes, _ = _vote(index, query, neighbours=8, power=2.0)

    assert max(votes, key=votes.get) == 0
    assert votes[1] < votes[0] / 2


def test_unique_match_votes_near_one():
    rng = np.random.default_rng(6)
    index, _, distinctive = build_index(rng)

    votes, _ = _vote(index, distinctive[:1], neighbours=8, power=2.0)

    assert votes[0] > 0.9


def test_tied_neighbours_vote_near_zero():
    rng = np.random.default_rng(6)
    index, texture, _ = build_index(rng)

    votes, _ = _vote(index, texture[None, :], neighbours=8, power=2.0)

    assert sum(votes.values()) < 0.5


def test_higher_power_favours_distinctive_cells():
    rng = np.random.default_rng(7)
    index, texture, distinctive = build_index(rng)
    query = np.concatenate([near(distinctive, 10, 0.01, rng).reshape(-1, DIM), near(texture, 40, 0.05, rng)])

    linear, _ = _vote(index, query, neighbours=8, power=1.0)
    squared, _ = _vote(index, query, neighbours=8, power=2.0)

    assert set(squared) == set(linear)
    assert squared[0] / squared[1] > linear[0] / linear[1]


def test_vote_pairs_name_matched_cells():
    rng = np.random.default_rng(8)
    index, _, distinctive = build_index(rng)

    votes, pairs = _vote(index, distinctive[[3, 7]], neighbours=8, power=2.0)

    query_ids, reference_ids = pairs[0]
    assert query_ids.tolist() == [0, 1]
    assert reference_ids.tolist() == [3, 7]
    assert 0 in votes
