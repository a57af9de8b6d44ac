"""Search structures that grow and shrink with a collection without a full rebuild.

- `DescriptorIndex`: every local descriptor of every painting in faiss HNSW graphs with 8-bit
  scalar quantisation. HNSW takes additions at any time. Removals only mark vectors dead, and the
  graph is rebuilt from its own stored vectors once dead vectors pass 30% of it.
- `EmbeddingIndex`: one global embedding per painting in Annoy (angular distance). An Annoy index is
  immutable once built, so new embeddings wait in a small exact buffer that is searched beside it and
  folded in by a rebuild once it grows.

A saved `DescriptorIndex` can be loaded memory-mapped. faiss then maps the graph files instead of
copying them into the process, so every predictor on a machine shares one copy of the pages in the
operating system's file cache. A mapped graph is read-only, because faiss aborts the process on an
addition to it. So additions go to a second, in-memory graph, and searches merge the nearest
neighbours of both.

NOTE: faiss still touches every page of a mapped file while loading it (the file's resident pages
reached its size right after `read_index`), so a load from a cold file cache reads the whole file.
"""

from __future__ import annotations

import bisect
import pickle
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from annoy import AnnoyIndex

HNSW_NEIGHBOURS = 32
REBUILD_TOMBSTONE_SHARE = 0.3


@dataclass
class _Part:
    """One faiss graph, which contains the vectors with ids start .. start + ntotal - 1."""

    graph: faiss.Index
    start: int
    mapped: bool  # mapped from a file, so never added to


class DescriptorIndex:
    """Approximate nearest-neighbour search over descriptors, each owned by an integer key.

    Vectors have ids in the order they were added, and live in one or more parts. Only the last
    part takes additions, and only when it is not memory-mapped.
    """

    def __init__(self, dim: int, value_range: tuple[float, float], ef_search: int = 16) -> None:
        self.dim = dim
        self.value_range = value_range
        self.ef_search = ef_search
        self._parts: list[_Part] = []
        self._owners = np.zeros(0, np.int64)
        self._offsets = np.zeros(0, np.int32)  # position of each vector within its owner's descriptors
        self._ranges: dict[int, tuple[int, int]] = {}  # key -> (first vector id, count)
        self._dead_vectors = 0

    def __len__(self) -> int:
        return len(self._ranges)

    @property
    def vector_count(self) -> int:
        return len(self._owners) - self._dead_vectors

    @property
    def mapped(self) -> bool:
        """Whether some of the vectors are read from a memory-mapped file."""
        return any(part.mapped for part in self._parts)

    def keys(self) -> list[int]:
        return list(self._ranges)

    def add(self, key: int, descriptors: np.ndarray) -> None:
        """Add (or replace) the descriptors of one owner."""
        if key in self._ranges:
            self.remove(key)
        descriptors = np.ascontiguousarray(descriptors, dtype=np.float32)
        start = len(self._owners)
        if len(descriptors):
            self._writable_part().graph.add(descriptors)
        self._owners = np.concatenate([self._owners, np.full(len(descriptors), key, np.int64)])
        self._offsets = np.concatenate([self._offsets, np.arange(len(descriptors), dtype=np.int32)])
        self._ranges[key] = (start, len(descriptors))

    def remove(self, key: int) -> None:
        start, count = self._ranges.pop(key)
        self._owners[start : start + count] = -1
        self._dead_vectors += count
        if self._dead_vectors > REBUILD_TOMBSTONE_SHARE * max(1, len(self._owners)):
            self._rebuild()

    def descriptors_of(self, key: int) -> np.ndarray:
        """Return the stored (quantised) descriptors of one owner, in the order they were added."""
        start, count = self._ranges[key]
        if count == 0:
            return np.zeros((0, self.dim), np.float32)
        # One add call puts all of an owner's vectors in one part.
        part = self._parts[bisect.bisect_right([p.start for p in self._parts], start) - 1]
        return part.graph.reconstruct_n(start - part.start, count)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Find the k nearest stored descriptors of each query descriptor.

        Returns three (len(queries), k) arrays: owner keys (-1 where there is no result), each match's
        position within its owner's descriptors, and squared L2 distances.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        parts = [part for part in self._parts if part.graph.ntotal > 0]
        if not parts or len(queries) == 0:
            shape = (len(queries), k)
            return np.full(shape, -1, np.int64), np.zeros(shape, np.int32), np.full(shape, np.inf, np.float32)

        found_distances, found_ids = [], []
        for part in parts:
            faiss.ParameterSpace().set_index_parameter(part.graph, "efSearch", max(self.ef_search, k))
            distances, ids = part.graph.search(queries, k)
            found_distances.append(np.where(ids >= 0, distances, np.inf))
            found_ids.append(np.where(ids >= 0, ids + part.start, -1))
        distances, ids = np.hstack(found_distances), np.hstack(found_ids)
        if len(parts) > 1:
            nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]
            distances = np.take_along_axis(distances, nearest, axis=1)
            ids = np.take_along_axis(ids, nearest, axis=1)

        safe_ids = np.clip(ids, 0, None)
        owners = np.where(ids >= 0, self._owners[safe_ids], -1)
        distances = np.where(owners >= 0, distances, np.inf)
        return owners, self._offsets[safe_ids], distances

    def save(self, path: Path) -> None:
        """Write the index as `path`.pkl and one faiss file per part."""
        files = []
        for number, part in enumerate(self._parts):
            name = _part_file_name(path, number)
            faiss.write_index(part.graph, str(path.parent / name))
            files.append((name, part.start))
        state = {
            "dim": self.dim,
            "value_range": self.value_range,
            "ef_search": self.ef_search,
            "parts": files,
            "owners": self._owners,
            "offsets": self._offsets,
            "ranges": self._ranges,
            "dead_vectors": self._dead_vectors,
        }
        path.with_suffix(".pkl").write_bytes(pickle.dumps(state))

    @classmethod
    def load(cls, path: Path, mapped: bool = False) -> "DescriptorIndex":
        """Read an index written by `save`. With `mapped`, map its graphs instead of copying them."""
        state = pickle.loads(path.with_suffix(".pkl").read_bytes())
        index = cls(state["dim"], state["value_range"], state["ef_search"])
        # Indexes saved before parts existed have one graph in `path`.faiss.
        files = state.get("parts", [(path.with_suffix(".faiss").name, 0)])
        flags = faiss.IO_FLAG_MMAP_IFC if mapped else 0
        for name, start in files:
            graph = faiss.read_index(str(path.parent / name), flags)
            index._parts.append(_Part(graph, start, mapped))
        index._owners = state["owners"]
        index._offsets = state["offsets"]
        index._ranges = state["ranges"]
        index._dead_vectors = state["dead_vectors"]
        return index

    def _writable_part(self) -> _Part:
        if not self._parts or self._parts[-1].mapped:
            self._parts.append(_Part(self._new_faiss_index(), len(self._owners), mapped=False))
        return self._parts[-1]

    def _new_faiss_index(self) -> faiss.Index:
        index = faiss.IndexHNSWSQ(self.dim, faiss.ScalarQuantizer.QT_8bit_uniform, HNSW_NEIGHBOURS)
        # The descriptors' value range is known in advance, so the quantiser is trained on its two
        # ends instead of on the first paintings, which might not span it.
        low, high = self.value_range
        index.train(np.array([[low] * self.dim, [high] * self.dim], np.float32))
        return index

    def _rebuild(self) -> None:
        """Move the live vectors into one new in-memory graph, dropping the dead ones."""
        live = {key: self.descriptors_of(key) for key in self._ranges}
        self._parts = []
        self._owners = np.zeros(0, np.int64)
        self._offsets = np.zeros(0, np.int32)
        self._ranges = {}
        self._dead_vectors = 0
        for key, descriptors in live.items():
            self.add(key, descriptors)


def _part_file_name(path: Path, number: int) -> str:
    return f"{path.name}.faiss" if number == 0 else f"{path.name}.part{number}.faiss"


class EmbeddingIndex:
    """Annoy over one L2-normalised embedding per key, with an exact buffer for recent additions."""

    def __init__(self, dim: int, trees: int = 20, buffer_limit: int = 256) -> None:
        self.dim = dim
        self.trees = trees
        self.buffer_limit = buffer_limit
        self._vectors: dict[int, np.ndarray] = {}
        self._annoy: AnnoyIndex | None = None
        self._buffer: set[int] = set()

    def __len__(self) -> int:
        return len(self._vectors)

    def add(self, key: int, embedding: np.ndarray) -> None:
        self._vectors[key] = np.asarray(embedding, np.float32)
        self._buffer.add(key)
        if len(self._buffer) > self.buffer_limit:
            self.rebuild()

    def remove(self, key: int) -> None:
        self._vectors.pop(key, None)
        self._buffer.discard(key)

    def rebuild(self) -> None:
        annoy = AnnoyIndex(self.dim, "angular")
        for key, vector in self._vectors.items():
            annoy.add_item(key, vector)
        annoy.build(self.trees, n_jobs=1)
        self._annoy, self._buffer = annoy, set()

    def search(self, embedding: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Return up to k (key, cosine similarity) pairs, most similar first."""
        found: dict[int, float] = {}
        if self._annoy is not None:
            keys, distances = self._annoy.get_nns_by_vector(embedding, k + 8, include_distances=True)
            for key, distance in zip(keys, distances):
                if key in self._vectors:  # removed keys stay in Annoy until the next rebuild
                    found[key] = 1.0 - distance * distance / 2.0  # angular distance -> cosine
        for key in self._buffer:
            found[key] = float(np.dot(self._vectors[key], embedding))
        return sorted(found.items(), key=lambda item: -item[1])[:k]

    def __getstate__(self) -> dict:
        # Annoy objects do not pickle; the vectors are enough to rebuild the index on load.
        return {"dim": self.dim, "trees": self.trees, "buffer_limit": self.buffer_limit, "vectors": self._vectors}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["dim"], state["trees"], state["buffer_limit"])
        self._vectors = state["vectors"]
        if self._vectors:
            self.rebuild()
