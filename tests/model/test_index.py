import numpy as np

from model.index import DescriptorIndex, EmbeddingIndex


def unit_rows(rng, count, dim):
    rows = rng.normal(size=(count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_descriptor_search_returns_owner_and_offset():
    rng = np.random.default_rng(0)
    index = DescriptorIndex(32, (-1.0, 1.0))
    stored = {key: unit_rows(rng, 50, 32) for key in range(5)}
    for key, rows in stored.items():
        index.add(key, rows)

    owners, offsets, distances = index.search(stored[3][[7, 20]], k=2)
    assert owners[:, 0].tolist() == [3, 3]
    assert offsets[:, 0].tolist() == [7, 20]
    assert (distances[:, 0] < distances[:, 1]).all()


def test_removed_owner_never_returned():
    rng = np.random.default_rng(1)
    index = DescriptorIndex(16, (-1.0, 1.0))
    rows = {key: unit_rows(rng, 20, 16) for key in range(4)}
    for key, value in rows.items():
        index.add(key, value)

    index.remove(2)
    owners, _, _ = index.search(rows[2], k=3)
    assert 2 not in owners
    assert len(index) == 3
    assert sorted(index.keys()) == [0, 1, 3]


def test_rebuild_after_many_removals_keeps_the_rest():
    rng = np.random.default_rng(2)
    index = DescriptorIndex(16, (-1.0, 1.0))
    rows = {key: unit_rows(rng, 10, 16) for key in range(10)}
    for key, value in rows.items():
        index.add(key, value)
    for key in range(6):
        index.remove(key)

    assert index.vector_count == 40
    owners, offsets, _ = index.search(rows[8][[4]], k=1)
    assert owners[0, 0] == 8
    assert offsets[0, 0] == 4
    # Quantised to 8 bits over [-1, 1]: each value within one step of the original.
    assert np.abs(index.descriptors_of(8) - rows[8]).max() < 2.0 / 255 + 1e-6


def test_descriptor_index_save_load(tmp_path):
    rng = np.random.default_rng(3)
    index = DescriptorIndex(8, (0.0, 1.0))
    index.add(11, rng.uniform(size=(5, 8)).astype(np.float32))
    index.save(tmp_path / "sift")

    loaded = DescriptorIndex.load(tmp_path / "sift")
    assert loaded.keys() == [11]
    assert np.allclose(loaded.descriptors_of(11), index.descriptors_of(11))


def test_mapped_index_additions(tmp_path):
    rng = np.random.default_rng(5)
    rows = {key: unit_rows(rng, 40, 16) for key in range(6)}
    index = DescriptorIndex(16, (-1.0, 1.0))
    for key in range(4):
        index.add(key, rows[key])
    index.save(tmp_path / "dense")

    mapped = DescriptorIndex.load(tmp_path / "dense", mapped=True)
    assert mapped.mapped
    mapped.add(4, rows[4])  # would abort the process if it reached the mapped graph
    mapped.add(5, rows[5])
    mapped.add(1, rows[1][::-1].copy())  # replacing a mapped owner leaves tombstones in the file's graph

    owners, offsets, distances = mapped.search(np.vstack([rows[0][[3]], rows[5][[9]]]), k=4)
    assert owners[:, 0].tolist() == [0, 5]
    assert offsets[:, 0].tolist() == [3, 9]
    for row in distances:  # both graphs' neighbours merged, nearest first (dead vectors come as inf)
        assert (np.diff(row[np.isfinite(row)]) >= 0).all()

    # The replaced vectors still sit in the mapped graph, dead: they come back as no owner.
    owners, offsets, _ = mapped.search(rows[1][[0]], k=2)
    assert owners[0].tolist() == [-1, 1]
    assert offsets[0, 1] == 39
    assert mapped.vector_count == 6 * 40
    assert np.abs(mapped.descriptors_of(5) - rows[5]).max() < 2.0 / 255 + 1e-6

    # Saved again, the index keeps both graphs; loaded again, it finds the same owners.
    mapped.save(tmp_path / "again")
    assert sorted(p.name for p in tmp_path.glob("again*")) == ["again.faiss", "again.part1.faiss", "again.pkl"]
    reloaded = DescriptorIndex.load(tmp_path / "again", mapped=True)
    assert reloaded.search(rows[4][[7]], k=1)[0][0, 0] == 4
    assert reloaded.search(rows[1][[0]], k=2)[1][0, 1] == 39


def test_mapped_index_removals_rebuild(tmp_path):
    rng = np.random.default_rng(6)
    rows = {key: unit_rows(rng, 10, 16) for key in range(10)}
    index = DescriptorIndex(16, (-1.0, 1.0))
    for key, value in rows.items():
        index.add(key, value)
    index.save(tmp_path / "sift")

    mapped = DescriptorIndex.load(tmp_path / "sift", mapped=True)
    for key in range(4):
        mapped.remove(key)

    assert not mapped.mapped
    assert sorted(mapped.keys()) == list(range(4, 10))
    assert mapped.search(rows[2], k=1)[0].ravel().tolist().count(2) == 0
    mapped.add(20, rows[0])  # the rebuilt graph is in memory and takes additions
    assert mapped.search(rows[0][[5]], k=1)[0][0, 0] == 20


def test_search_on_empty_index():
    owners, _, distances = DescriptorIndex(4, (0.0, 1.0)).search(np.ones((2, 4), np.float32), k=3)
    assert (owners == -1).all()
    assert np.isinf(distances).all()


def test_embedding_index_buffer_and_annoy_agree():
    rng = np.random.default_rng(4)
    vectors = unit_rows(rng, 30, 12)
    index = EmbeddingIndex(12, buffer_limit=10)
    for key, vector in enumerate(vectors):
        index.add(key, vector)  # crosses the buffer limit, so part lives in Annoy

    for key in (0, 15, 29):
        found = index.search(vectors[key], k=1)
        assert found[0][0] == key
        assert abs(found[0][1] - 1.0) < 1e-4

    index.remove(15)
    assert all(key != 15 for key, _ in index.search(vectors[15], k=5))
