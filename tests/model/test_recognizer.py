import numpy as np
import pytest

from model.recognizer import Recognizer
from model.settings import EngineSettings
from model.synthetic import photograph, render_painting


def top_id(matches):
    return matches[0].painting_id if matches else None


@pytest.mark.parametrize("seed", [101, 104, 108])
def test_photo_recognised_as_its_painting(recognizer, paintings, seed):
    photo = photograph(paintings[f"painting-{seed}"], seed=seed, tilt=0.15, scale=0.6)
    matches = recognizer.predict(photo)
    assert top_id(matches) == f"painting-{seed}"
    assert matches[0].score >= 0.5


def test_dim_blurred_steep_photo_recognised(recognizer, paintings):
    photo = photograph(paintings["painting-103"], seed=7, tilt=0.3, scale=0.45, blur=2.0, exposure=0.45, jpeg_quality=50)
    assert top_id(recognizer.predict(photo)) == "painting-103"


def test_match_outline_surrounds_painting(recognizer, paintings):
    photo = photograph(paintings["painting-105"], seed=3, tilt=0.0, scale=0.6, glare=False)
    match = recognizer.predict(photo)[0]
    outline = np.array(match.outline)
    height, width = photo.shape[:2]
    # The painting is centred within 15% of the photo's width and fills 60% of its height with the frame.
    centre = outline.mean(axis=0)
    assert abs(centre[0] - width / 2) < 0.2 * width
    assert abs(centre[1] - height / 2) < 0.15 * height
    assert 0.4 * height < outline[:, 1].max() - outline[:, 1].min() < 0.7 * height


@pytest.mark.parametrize("seed", [900, 901, 902])
def test_painting_outside_collection_rejected(recognizer, seed):
    stranger = render_painting(seed)
    photo = photograph(stranger, seed=seed, tilt=0.1, scale=0.6)
    assert recognizer.predict(photo) == []


def test_empty_wall_rejected(recognizer):
    wall = np.full((600, 800, 3), 200, np.uint8)
    assert recognizer.predict(wall) == []


def test_removed_painting_never_returned(recognizer, paintings):
    photo = photograph(paintings["painting-102"], seed=11)
    assert top_id(recognizer.predict(photo)) == "painting-102"

    assert recognizer.remove("painting-102") is True
    assert "painting-102" not in recognizer
    assert all(m.painting_id != "painting-102" for m in recognizer.predict(photo))
    assert recognizer.remove("painting-102") is False


def test_added_painting_found_without_rebuild(recognizer):
    newcomer = render_painting(555)
    photo = photograph(newcomer, seed=5)
    assert recognizer.predict(photo) == []

    recognizer.add("painting-555", "museum-a", recognizer.describe_reference(newcomer))
    assert top_id(recognizer.predict(photo)) == "painting-555"


def test_collection_filter(recognizer, backbone):
    other = render_painting(777)
    recognizer.add("painting-777", "museum-b", recognizer.describe_reference(other))
    photo = photograph(other, seed=2)

    assert top_id(recognizer.predict(photo, collection="museum-b")) == "painting-777"
    assert recognizer.predict(photo, collection="museum-a") == []
    assert recognizer.predict(photo, collection="no-such-museum") == []
    assert top_id(recognizer.predict(photo)) == "painting-777"


def test_replacing_painting_keeps_one_entry(recognizer, paintings):
    recognizer.add("painting-101", "museum-a", recognizer.describe_reference(paintings["painting-101"]))
    assert recognizer.painting_ids().count("painting-101") == 1
    assert len(recognizer) == len(paintings)


def test_save_and_load_round_trip(recognizer, backbone, paintings, tmp_path):
    recognizer.save(tmp_path / "index")
    restored = Recognizer(EngineSettings(threads=2), backbone)
    restored.load(tmp_path / "index")

    assert sorted(restored.painting_ids()) == sorted(paintings)
    photo = photograph(paintings["painting-107"], seed=21)
    assert top_id(restored.predict(photo)) == "painting-107"


def test_tiny_and_thin_photos_do_not_crash(recognizer):
    for shape in [(1, 1, 3), (8, 300, 3), (300, 8, 3), (40, 40, 3)]:
        assert recognizer.predict(np.full(shape, 128, np.uint8)) == []


def test_mapped_version_upload_and_deletion(recognizer, backbone, paintings, tmp_path):
    recognizer.save(tmp_path / "index")
    restored = Recognizer(EngineSettings(threads=2), backbone)
    restored.load(tmp_path / "index", mapped=True)

    # Graphs mapped from the file are read-only, so a new painting must go to memory: if it
    # reached the mapped graph, faiss would abort this process.
    newcomer = render_painting(4242)
    restored.add("painting-new", "museum-a", restored.describe_reference(newcomer))
    restored.remove("painting-103")

    assert top_id(restored.predict(photograph(newcomer, seed=5))) == "painting-new"
    assert top_id(restored.predict(photograph(paintings["painting-105"], seed=6))) == "painting-105"
    assert "painting-103" not in restored.painting_ids()
    assert top_id(restored.predict(photograph(paintings["painting-103"], seed=7))) != "painting-103"


def test_first_pass_breadth_and_cells(backbone, paintings):
    settings = EngineSettings(threads=2, first_pass_ef_search=8, hnsw_ef_search=24, first_pass_cell_step=2)
    engine = Recognizer(settings, backbone)
    for painting_id, image in paintings.items():
        engine.add(painting_id, "museum-a", engine.describe_reference(image))
    index = engine._collections["museum-a"].dense
    searches = []
    search = index.search

    def recorded(queries, k):
        searches.append((len(queries), index.ef_search))
        return search(queries, k)

    index.search = recorded
    wall = np.full((480, 640, 3), 200, np.uint8)
    wall[::7] = 90  # some texture, so the photo has cells to vote with, but no painting
    assert engine.predict(wall) == []

    cells = len(engine._describe_whole(wall).dense.descriptors)
    first_count, first_breadth = searches[0]
    assert first_breadth == 8
    assert cells / 5 < first_count < cells / 3  # about one cell in four
    assert (cells, 24) in searches[1:]  # the full shortlist's votes come from all cells, searched wider
