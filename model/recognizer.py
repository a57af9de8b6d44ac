"""The recognition engine: which paintings of a collection does a photo show?

A query goes through four steps:

1. Describe: RootSIFT keypoints over the whole photo; CNN dense cells and global embeddings of the
   whole photo and of each framed quadrilateral found in it, rectified to a frontal view.
2. Shortlist: every descriptor votes for the paintings of its nearest stored descriptors. SIFT
   descriptors and CNN cells each have their own HNSW index. The global embeddings (the backbone's,
   and the autoencoder's and the museum embedding's once trained) add their nearest paintings from
   Annoy. Only shortlisted paintings are verified, so the verification cost of a query does not grow
   with the collection.
3. Verify: for each shortlisted painting, fit a homography to its correspondences in each view and
   count the inliers (see `model.verify`).
4. Decide: inlier counts are compared with what chance gives for this very photo (see `_confidence`),
   and paintings that beat chance clearly are returned, best first. A photo with none gets [].
"""

from __future__ import annotations

import math
import pickle
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from model.autoencoder import INPUT_SIZE, AutoencoderEncoder
from model.backbone import Backbone
from model.features import DenseExtractor, LocalFeatures, SiftExtractor, resize_to_side
from model.index import DescriptorIndex, EmbeddingIndex
from model.localize import find_quadrilaterals, rectify
from model.museum_head import MuseumHeadEncoder
from model.settings import EngineSettings
from model.verify import Verification, fit_homography, mutual_nearest_many

STATE_FILE = "engine.pkl"

# HNSW finds fewer of the true nearest neighbours at a fixed search breadth as its graph grows.
# Up to BREADTH_BASE_VECTORS stored descriptors the breadth is engine.hnsw_ef_search. Beyond that
# it grows with the count to the power BREADTH_GROWTH. On estensi with 10,000 distractor paintings
# (8.5 million CNN cells), breadth 32 left the right painting off every shortlist for 9 of 93 crops,
# and breadth 128 for 5 (bench/shortlist_recall.py, docs/benchmarks.md).
# NOTE: the exponent was chosen from measurements at two index sizes only.
BREADTH_BASE_VECTORS = 1_000_000
BREADTH_GROWTH = 0.75


@dataclass
class ReferenceFeatures:
    """Everything the engine stores about one painting image, computed once at upload."""

    size: tuple[int, int]  # width, height of the uploaded image
    sift: LocalFeatures
    dense: LocalFeatures
    embedding: np.ndarray
    autoencoder_embedding: np.ndarray | None
    museum_embedding: np.ndarray | None = None


@dataclass
class Reference:
    key: int
    painting_id: str
    collection: str
    size: tuple[int, int]
    sift_points: np.ndarray
    dense_points: np.ndarray


@dataclass
class View:
    """One description of the photo: the whole frame or a rectified quadrilateral."""

    dense: LocalFeatures
    embedding: np.ndarray
    autoencoder_embedding: np.ndarray | None
    size: tuple[int, int]
    to_photo: np.ndarray  # 3x3: view pixels -> photo pixels
    museum_embedding: np.ndarray | None = None


@dataclass
class Match:
    """A painting found in a photo."""

    painting_id: str
    collection: str
    score: float  # confidence in [0, 1]
    inliers: int
    outline: list[list[float]]  # the painting's corners in the photo's pixels

    def as_dict(self) -> dict:
        return {
            "painting_id": self.painting_id,
            "collection": self.collection,
            "score": round(self.score, 4),
            "inliers": self.inliers,
            "outline": self.outline,
        }


@dataclass
class Evidence:
    sift: Verification | None = None
    dense: Verification | None = None
    # Shortlisted only by a trained embedding (the autoencoder's or the museum embedding's).
    trained_only: bool = False


@dataclass
class CollectionIndex:
    """The search structures of one collection (one museum)."""

    sift: DescriptorIndex
    dense: DescriptorIndex
    embeddings: EmbeddingIndex
    autoencoder_embeddings: EmbeddingIndex
    references: dict[int, Reference] = field(default_factory=dict)
    museum_embeddings: EmbeddingIndex | None = None  # None in versions without a museum embedding


class Recognizer:
    """Indexes painting images and recognises them in photos. Thread-safe for one writer at a time."""

    def __init__(
        self,
        settings: EngineSettings,
        backbone: Backbone,
        autoencoder: AutoencoderEncoder | None = None,
        museum_head: MuseumHeadEncoder | None = None,
    ) -> None:
        self.settings = settings
        self.backbone = backbone
        self.autoencoder = autoencoder
        self.museum_head = museum_head
        self._query_sift = SiftExtractor(settings.query_side, settings.query_sift_features)
        self._reference_sift = SiftExtractor(settings.reference_side, settings.reference_sift_features)
        self._dense = DenseExtractor(backbone, settings.dense_side)
        self._collections: dict[str, CollectionIndex] = {}
        self._keys: dict[str, int] = {}  # painting id -> key
        self._next_key = 0
        self._lock = threading.RLock()

    # ----- collection management -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, painting_id: str) -> bool:
        return painting_id in self._keys

    def painting_ids(self, collection: str | None = None) -> list[str]:
        with self._lock:
            if collection is None:
                return list(self._keys)
            index = self._collections.get(collection)
            return [ref.painting_id for ref in index.references.values()] if index else []

    def describe_reference(self, rgb: np.ndarray) -> ReferenceFeatures:
        """Compute the stored features of one painting image (slow part of `add`, no lock held)."""
        height, width = rgb.shape[:2]
        dense, embedding = self._dense.extract(rgb)
        return ReferenceFeatures(
            size=(width, height),
            sift=self._reference_sift.extract(rgb),
            dense=dense,
            embedding=embedding,
            autoencoder_embedding=self._autoencoder_embedding(rgb),
            museum_embedding=self._museum_embedding(dense),
        )

    def add(self, painting_id: str, collection: str, features: ReferenceFeatures) -> None:
        """Add a painting, or replace the painting stored under the same id."""
        with self._lock:
            if painting_id in self._keys:
                self.remove(painting_id)
            key = self._next_key
            self._next_key += 1

            index = self._collections.get(collection) or self._new_collection()
            self._collections[collection] = index
            index.sift.add(key, features.sift.descriptors)
            index.dense.add(key, features.dense.descriptors)
            index.embeddings.add(key, features.embedding)
            if features.autoencoder_embedding is not None:
                index.autoencoder_embeddings.add(key, features.autoencoder_embedding)
            if features.museum_embedding is not None and index.museum_embeddings is not None:
                index.museum_embeddings.add(key, features.museum_embedding)
            index.references[key] = Reference(
                key, painting_id, collection, features.size, features.sift.points, features.dense.points
            )
            self._keys[painting_id] = key

    def remove(self, painting_id: str) -> bool:
        """Remove a painting; return False if it was not indexed."""
        with self._lock:
            key = self._keys.pop(painting_id, None)
            if key is None:
                return False
            for index in self._collections.values():
                reference = index.references.pop(key, None)
                if reference is None:
                    continue
                index.sift.remove(key)
                index.dense.remove(key)
                index.embeddings.remove(key)
                index.autoencoder_embeddings.remove(key)
                if index.museum_embeddings is not None:
                    index.museum_embeddings.remove(key)
            return True

    def finish_bulk_load(self) -> None:
        """Fold buffered embeddings into their Annoy indexes after many additions."""
        with self._lock:
            for index in self._collections.values():
                index.embeddings.rebuild()
                if len(index.autoencoder_embeddings):
                    index.autoencoder_embeddings.rebuild()
                if index.museum_embeddings is not None and len(index.museum_embeddings):
                    index.museum_embeddings.rebuild()

    # ----- recognition -------------------------------------------------------------------------

    def predict(self, rgb: np.ndarray, collection: str | None = None, limit: int = 5) -> list[Match]:
        """Return the paintings recognised in the photo, best first; [] when none is recognised.

        The work is a cascade that stops at the first confident match. CNN cells of the whole photo
        against its best-voted paintings settle most close-ups, and SIFT most wide gallery shots.
        Only the remaining photos pay for the full shortlist and the framed regions.
        """
        photo_size = (rgb.shape[1], rgb.shape[0])
        with self._lock:
            if collection is None:
                searched = list(self._collections.values())
            else:
                searched = [self._collections[collection]] if collection in self._collections else []
        if not searched:
            return []
        evidence: list[dict[int, Evidence]] = [defaultdict(Evidence) for _ in searched]
        settings = self.settings

        # First pass: the whole photo against the paintings that its sampled cells vote for most.
        # Its search is narrower than the full shortlist's.
        whole = self._describe_whole(rgb)
        sampled = _grid_sample(whole.dense.points, settings.first_pass_cell_step)
        with self._lock:
            votes = [self._view_votes(index, whole, sampled, settings.first_pass_ef_search) for index in searched]
            verified: list[set[int]] = []
            for index, found, view_votes in zip(searched, evidence, votes):
                keys = _top_keys(view_votes, settings.first_pass_candidates)
                self._verify_view(index, whole, 0, keys, found)
                verified.append(set(keys))
            matches = self._decide_all(searched, evidence)
        if matches and matches[0].score >= settings.early_exit_confidence:
            return matches[:limit]

        # Second pass: SIFT over the whole photo, which finds small paintings in wide shots.
        sift = self._query_sift.extract(rgb)
        with self._lock:
            for index, found in zip(searched, evidence):
                self._verify_sift(index, sift, photo_size, found)
            matches = self._decide_all(searched, evidence)
        if matches and matches[0].score >= settings.early_exit_confidence:
            return matches[:limit]

        # Last pass: the whole photo's full shortlist, voted by all its cells, and each framed
        # region on its own. Votes add up over cells, so after a first pass as wide as this one,
        # only the cells it left out are searched. After a narrower one, all cells are searched again.
        regions = self._describe_regions(rgb)
        with self._lock:
            for index, found, view_votes, done in zip(searched, evidence, votes, verified):
                if settings.first_pass_ef_search < settings.hnsw_ef_search:
                    view_votes = self._view_votes(index, whole)
                elif not sampled.all():
                    for key, vote in self._view_votes(index, whole, ~sampled).items():
                        view_votes[key] = view_votes.get(key, 0.0) + vote
                shortlists = [self._shortlist_view(index, whole, 0, view_votes)]
                shortlists += [
                    self._shortlist_view(index, view, number, self._view_votes(index, view))
                    for number, view in enumerate(regions, start=1)
                ]
                verified_before = set(found) | done
                for view_number, (view, (keys, _)) in enumerate(zip([whole, *regions], shortlists)):
                    self._verify_view(index, view, view_number, [k for k in keys if view_number or k not in done], found)
                _mark_trained_only(found, shortlists, verified_before)
            matches = self._decide_all(searched, evidence)
        return matches[:limit]

    def _describe_whole(self, rgb: np.ndarray) -> View:
        height, width = rgb.shape[:2]
        dense, embedding = self._dense.extract(rgb, self.settings.photo_dense_side)
        return View(
            dense, embedding, self._autoencoder_embedding(rgb), (width, height), np.eye(3), self._museum_embedding(dense)
        )

    def _describe_regions(self, rgb: np.ndarray) -> list[View]:
        views = []
        for quad in find_quadrilaterals(rgb, max_count=self.settings.max_regions):
            rectified, to_view = rectify(rgb, quad, self.settings.dense_side)
            dense, embedding = self._dense.extract(rectified)
            size = (rectified.shape[1], rectified.shape[0])
            views.append(
                View(
                    dense,
                    embedding,
                    self._autoencoder_embedding(rectified),
                    size,
                    np.linalg.inv(to_view),
                    self._museum_embedding(dense),
                )
            )
        return views

    def _verify_sift(
        self, index: CollectionIndex, sift: LocalFeatures, photo_size: tuple[int, int], evidence: dict[int, Evidence]
    ) -> None:
        """Shortlist by SIFT votes and verify with the correspondences behind the votes."""
        settings = self.settings
        index.sift.ef_search = search_breadth(settings.hnsw_ef_search, index.sift.vector_count)
        votes, pairs = _vote(index.sift, sift.descriptors, settings.sift_neighbours)
        threshold = settings.sift_ransac_fraction * max(photo_size)
        for key in _top_keys(votes, settings.shortlist):
            reference = index.references[key]
            query_ids, reference_ids = pairs[key]
            evidence[key].sift = fit_homography(
                reference.sift_points[reference_ids],
                sift.points[query_ids],
                threshold,
                reference.size,
                photo_size,
                distinct_cell=threshold,
            )

    def _view_votes(
        self, index: CollectionIndex, view: View, cells: np.ndarray | None = None, base_breadth: int | None = None
    ) -> dict[int, float]:
        """Return the CNN cell votes of one view, or of the cells selected by the boolean mask `cells`.

        `base_breadth` replaces engine.hnsw_ef_search as the search breadth before its growth.
        """
        settings = self.settings
        descriptors = view.dense.descriptors if cells is None else view.dense.descriptors[cells]
        base = settings.hnsw_ef_search if base_breadth is None else min(base_breadth, settings.hnsw_ef_search)
        index.dense.ef_search = search_breadth(base, index.dense.vector_count)
        votes, _ = _vote(index.dense, descriptors, settings.dense_neighbours, settings.dense_vote_power)
        return votes

    def _shortlist_view(
        self, index: CollectionIndex, view: View, view_number: int, votes: dict[int, float]
    ) -> tuple[list[int], set[int]]:
        """Rank paintings for one view by its CNN cell votes, then add the nearest global embeddings.

        Returns the shortlist and the paintings on it that only a trained embedding added.
        """
        settings = self.settings
        # The whole photo gets the longer shortlist: it is the only view of a close-up shot.
        shortlist = _top_keys(votes, settings.dense_shortlist if view_number == 0 else settings.shortlist)
        shortlist += [key for key, _ in index.embeddings.search(view.embedding, settings.embedding_shortlist)]
        trained = []
        if view.autoencoder_embedding is not None and len(index.autoencoder_embeddings):
            nearest = index.autoencoder_embeddings.search(view.autoencoder_embedding, settings.embedding_shortlist)
            trained += [key for key, _ in nearest]
        if view.museum_embedding is not None and index.museum_embeddings is not None and len(index.museum_embeddings):
            nearest = index.museum_embeddings.search(view.museum_embedding, settings.embedding_shortlist)
            trained += [key for key, _ in nearest]
        return list(dict.fromkeys(shortlist + trained)), set(trained) - set(shortlist)

    def _verify_view(
        self, index: CollectionIndex, view: View, view_number: int, keys: list[int], evidence: dict[int, Evidence]
    ) -> None:
        """Verify paintings against one view by mutual nearest CNN cells and a homography."""
        settings = self.settings
        threshold = settings.dense_ransac_fraction * max(view.size)
        # The lock is released between passes, so a shortlisted painting may have been removed.
        keys = [key for key in keys if key in index.references]
        candidates = [index.dense.descriptors_of(key) for key in keys]
        pairs = mutual_nearest_many(view.dense.descriptors, candidates, settings.dense_ratio)
        for key, (query_ids, reference_ids) in zip(keys, pairs):
            reference = index.references[key]
            found = fit_homography(
                reference.dense_points[reference_ids],
                view.dense.points[query_ids],
                threshold,
                reference.size,
                view.size,
            )
            if found is None:
                continue
            if view_number > 0 and not _fills_region(found.outline, view.size):
                # A framed region shows one painting, so a true match covers most of it. A chance
                # fit on the frame or in a corner of the region does not.
                continue
            best = evidence[key].dense
            if best is None or found.inliers > best.inliers:
                outline = cv2.perspectiveTransform(found.outline.reshape(-1, 1, 2), view.to_photo).reshape(4, 2)
                evidence[key].dense = Verification(found.inliers, found.correspondences, found.homography, outline)

    def _decide_all(self, searched: list[CollectionIndex], evidence: list[dict[int, Evidence]]) -> list[Match]:
        matches: list[Match] = []
        for index, found in zip(searched, evidence):
            matches += self._decide(index, found)
        matches.sort(key=lambda match: (-match.score, -match.inliers))
        return matches

    def _decide(self, index: CollectionIndex, evidence: dict[int, Evidence]) -> list[Match]:
        if not evidence:
            return []
        sift_counts = {key: e.sift.inliers if e.sift else 0 for key, e in evidence.items()}
        dense_counts = {key: e.dense.inliers if e.dense else 0 for key, e in evidence.items()}

        matches = []
        for key, found in evidence.items():
            if key not in index.references:
                continue  # removed while this photo was being described
            # The chance level comes from the other shortlists only, because paintings that only a
            # trained embedding shortlisted look like the photo by design and would raise it.
            sift_null = _chance_level([n for other, n in sift_counts.items() if other != key and not evidence[other].trained_only])
            dense_null = _chance_level([n for other, n in dense_counts.items() if other != key and not evidence[other].trained_only])
            confidence = _confidence(sift_counts[key], sift_null, self.settings.sift_min_inliers)
            dense_confidence = _confidence(dense_counts[key], dense_null, self.settings.dense_min_inliers)
            best = found.sift if confidence >= dense_confidence else found.dense
            confidence = max(confidence, dense_confidence)
            if confidence < self.settings.min_confidence or best is None:
                continue
            reference = index.references[key]
            matches.append(
                Match(
                    painting_id=reference.painting_id,
                    collection=reference.collection,
                    score=confidence,
                    inliers=best.inliers,
                    outline=[[round(float(x), 1), round(float(y), 1)] for x, y in best.outline],
                )
            )
        return matches

    # ----- persistence -------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the whole index to a directory (written by the caller to a temporary place first)."""
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            collections = {}
            for number, (name, index) in enumerate(self._collections.items()):
                index.sift.save(directory / f"sift-{number}")
                index.dense.save(directory / f"dense-{number}")
                collections[name] = {
                    "number": number,
                    "embeddings": index.embeddings,
                    "autoencoder_embeddings": index.autoencoder_embeddings,
                    "museum_embeddings": index.museum_embeddings,
                    "references": index.references,
                }
            state = {"collections": collections, "keys": self._keys, "next_key": self._next_key}
            (directory / STATE_FILE).write_bytes(pickle.dumps(state))

    def load(self, directory: Path, mapped: bool = False) -> None:
        """Replace the in-memory index with one written by `save`. With `mapped`, map its graphs from disk."""
        state = pickle.loads((directory / STATE_FILE).read_bytes())
        collections = {}
        for name, saved in state["collections"].items():
            number = saved["number"]
            collections[name] = CollectionIndex(
                sift=DescriptorIndex.load(directory / f"sift-{number}", mapped),
                dense=DescriptorIndex.load(directory / f"dense-{number}", mapped),
                embeddings=saved["embeddings"],
                autoencoder_embeddings=saved["autoencoder_embeddings"],
                references=saved["references"],
                # Versions saved before the museum embedding existed have none.
                museum_embeddings=saved.get("museum_embeddings"),
            )
        with self._lock:
            self._collections = collections
            self._keys = state["keys"]
            self._next_key = state["next_key"]

    # ----- helpers -----------------------------------------------------------------------------

    def _new_collection(self) -> CollectionIndex:
        return CollectionIndex(
            sift=DescriptorIndex(SiftExtractor.dim, (0.0, 1.0), self.settings.hnsw_ef_search),
            dense=DescriptorIndex(self.backbone.dense_dim, (-1.0, 1.0), self.settings.hnsw_ef_search),
            embeddings=EmbeddingIndex(self.backbone.embedding_dim),
            autoencoder_embeddings=EmbeddingIndex(AutoencoderEncoder.embedding_dim),
            museum_embeddings=EmbeddingIndex(self.museum_head.embedding_dim) if self.museum_head else None,
        )

    def _autoencoder_embedding(self, rgb: np.ndarray) -> np.ndarray | None:
        if self.autoencoder is None:
            return None
        square = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
        return self.autoencoder.embed(square)

    def _museum_embedding(self, dense: LocalFeatures) -> np.ndarray | None:
        if self.museum_head is None:
            return None
        return self.museum_head.embed(dense.descriptors)


def search_breadth(base: int, vectors: int) -> int:
    """Return the HNSW search breadth (efSearch) for an index of `vectors` descriptors."""
    if vectors <= BREADTH_BASE_VECTORS:
        return base
    return round(base * (vectors / BREADTH_BASE_VECTORS) ** BREADTH_GROWTH)


def _vote(
    index: DescriptorIndex, descriptors: np.ndarray, neighbours: int, power: float = 1.0, max_ratio: float = 1.0
) -> tuple[dict[int, float], dict[int, tuple[np.ndarray, np.ndarray]]]:
    """Let each query descriptor vote for the owners of its nearest stored descriptors.

    Each descriptor votes at most once per painting, through its nearest descriptor of that
    painting, with the weight (1 - d**2 / d_next**2) ** power. Here d is the distance to that
    descriptor and d_next the distance to the (k+1)-th neighbour, so the weight is a soft ratio
    test. Returns the votes and, per painting, the (query index, reference index) pairs behind
    them, keeping only pairs whose distance is below `max_ratio` times d_next.
    """
    if len(descriptors) == 0 or len(index) == 0:
        return {}, {}

    owners, offsets, distances = index.search(descriptors, neighbours + 1)
    owners, offsets = owners[:, :neighbours], offsets[:, :neighbours]
    # Distance to each neighbour relative to the (k+1)-th. Near 1 means the descriptor is about as
    # near to many stored descriptors (frame ornaments, bare canvas, brush texture), so it votes with
    # almost no weight. The (k+1)-th neighbour comes nearer as a collection grows, so the discount
    # grows with it. Missing neighbours get the squared distance 4.0, the maximum between unit vectors.
    finite = np.where(np.isfinite(distances), distances, 4.0)
    ratios = np.sqrt(finite[:, :neighbours] / np.maximum(finite[:, -1:], 1e-12))
    weights = np.clip(1.0 - ratios**2, 0.0, None) ** power

    # Row-major flattening lists each descriptor's neighbours nearest first, so the first
    # occurrence of a (descriptor, owner) pair is its nearest match in that painting.
    rows = np.repeat(np.arange(len(descriptors)), neighbours)
    flat_owners = owners.ravel()
    valid = flat_owners >= 0
    rows, flat_owners = rows[valid], flat_owners[valid]
    flat_offsets, flat_weights = offsets.ravel()[valid], weights.ravel()[valid]
    flat_ratios = ratios.ravel()[valid]
    _, first = np.unique(rows * (int(flat_owners.max()) + 1) + flat_owners, return_index=True)
    rows, flat_owners, flat_offsets = rows[first], flat_owners[first], flat_offsets[first]
    flat_weights, flat_ratios = flat_weights[first], flat_ratios[first]
    if max_ratio < 1.0:
        # Ambiguous descriptors still vote, but give no correspondence to verify.
        distinct = flat_ratios < max_ratio
    else:
        distinct = np.ones(len(rows), bool)

    unique_owners, owner_positions = np.unique(flat_owners, return_inverse=True)
    totals = np.bincount(owner_positions, weights=flat_weights, minlength=len(unique_owners))
    votes = {int(owner): float(total) for owner, total in zip(unique_owners, totals)}
    order = np.argsort(owner_positions, kind="stable")
    boundaries = np.cumsum(np.bincount(owner_positions, minlength=len(unique_owners)))[:-1]
    pairs = {}
    for owner, chunk in zip(unique_owners, np.split(order, boundaries)):
        chunk = chunk[distinct[chunk]]
        pairs[int(owner)] = (rows[chunk], flat_offsets[chunk].astype(np.int64))
    return votes, pairs


def _grid_sample(points: np.ndarray, step: int) -> np.ndarray:
    """Select every `step`-th cell of a grid in both directions, as a boolean mask over `points`.

    The cells keep their scale and spread over the whole photo, so a painting anywhere in it still
    gets about 1/step**2 of its votes.
    """
    if step <= 1 or len(points) == 0:
        return np.ones(len(points), bool)
    _, columns = np.unique(points[:, 0], return_inverse=True)
    _, rows = np.unique(points[:, 1], return_inverse=True)
    return (columns % step == step // 2) & (rows % step == step // 2)


def _mark_trained_only(
    evidence: dict[int, Evidence], shortlists: list[tuple[list[int], set[int]]], verified_before: set[int]
) -> None:
    """Flag the verified paintings that no shortlist but a trained embedding's put forward.

    `shortlists` has the last pass's (shortlist, trained-only part) of each view, and
    `verified_before` the paintings that the first pass and the SIFT pass verified.
    """
    trained = set().union(*(only for _, only in shortlists))
    untrained = verified_before.union(*(set(keys) - only for keys, only in shortlists))
    for key in trained - untrained:
        if key in evidence:
            evidence[key].trained_only = True


def _fills_region(outline: np.ndarray, region_size: tuple[int, int]) -> bool:
    width, height = region_size
    covered = cv2.contourArea(outline.astype(np.float32))
    return 0.3 * width * height <= covered <= 1.5 * width * height


def _top_keys(votes: dict[int, float], count: int) -> list[int]:
    return [key for key, _ in sorted(votes.items(), key=lambda item: -item[1])[:count]]


def _chance_level(counts: list[int]) -> tuple[float, float]:
    """Estimate the inlier count that chance gives for this photo, as (median, spread).

    `counts` are the other shortlisted paintings' inliers. Most of them are not in the photo, so
    their median and median absolute deviation describe chance matches even when a few paintings
    are present. With fewer than three others (a tiny collection) chance is taken as zero.
    """
    if len(counts) < 3:
        return 0.0, 0.0
    values = np.array(counts, np.float64)
    median = float(np.median(values))
    return median, float(np.median(np.abs(values - median)))


def _confidence(inliers: int, chance: tuple[float, float], min_inliers: int) -> float:
    """Map an inlier count to [0, 1]: 0.5 at `min_inliers` above chance, near 1 well above it."""
    median, spread = chance
    margin = inliers - max(median + 3.0 * spread, 0.0)
    if inliers < min_inliers / 2:
        return 0.0
    return 1.0 / (1.0 + math.exp(-(margin - min_inliers) / max(min_inliers / 4.0, 1.0)))


def load_image_for_engine(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink very large photos once, before any step, so work per query is bounded."""
    if max(rgb.shape[:2]) <= max_side:
        return rgb
    return resize_to_side(rgb, max_side)[0]
