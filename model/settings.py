"""Engine settings, with the defaults that `config.toml` documents under [engine]."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSettings:
    # Image intake.
    max_pixels: int = 50_000_000  # larger uploads are rejected as possible decompression bombs
    max_side: int = 2048  # photos are shrunk to this longer side before anything else

    # Description.
    backbone: str = "efficientnet_lite0"  # or "alexnet" with backbone_weights set
    backbone_weights: str = ""  # empty: the weights shipped with the backbone's package
    autoencoder_checkpoint: str = ""  # empty: no trained autoencoder yet
    query_side: int = 1024  # SIFT runs on the photo scaled to this longer side
    query_sift_features: int = 1000
    reference_side: int = 640  # SIFT runs on painting images scaled to this longer side
    reference_sift_features: int = 800
    dense_side: int = 512  # CNN cells of paintings and of rectified regions: longer side in pixels
    # The whole photo is described larger: a close-up still shows frame and wall around the painting,
    # and the painting itself should come out near the size its reference was described at.
    photo_dense_side: int = 768
    max_regions: int = 3  # framed quadrilaterals described separately per photo

    # Shortlist.
    sift_neighbours: int = 4
    dense_neighbours: int = 8
    # CNN cell votes are weighted by a soft ratio test raised to this power (see `_vote` in
    # model/recognizer.py). Squaring lets distinctive cells outvote the many generic ones.
    dense_vote_power: float = 2.0
    shortlist: int = 10  # paintings verified from SIFT votes, and from each region's CNN votes
    dense_shortlist: int = 30  # paintings verified from the whole photo's CNN votes
    embedding_shortlist: int = 3  # paintings added by each global embedding
    hnsw_ef_search: int = 32  # up to 1 million stored descriptors; see `search_breadth` in model/recognizer.py

    # Verification and decision.
    sift_ransac_fraction: float = 0.008  # inlier distance, as a fraction of the photo's longer side
    dense_ransac_fraction: float = 0.05  # the same for CNN cells (about 1.5 cells)
    dense_ratio: float = 0.95  # ratio test on CNN cell pairs; 1.0 keeps every mutual pair
    sift_min_inliers: int = 15
    dense_min_inliers: int = 15
    min_confidence: float = 0.5
    first_pass_candidates: int = 4  # paintings verified against the whole photo before anything else
    # The first pass votes with every n-th CNN cell of the photo in both directions (1: all cells).
    # The last pass votes with all cells, so the full shortlist stays the same. Only the paintings
    # verified first change, and with them the results of photos that end early.
    first_pass_cell_step: int = 2
    # Search breadth of the first pass, grown with the index like hnsw_ef_search. Below
    # hnsw_ef_search, the last pass searches all cells again instead of only those left out.
    first_pass_ef_search: int = 16
    early_exit_confidence: float = 0.99  # a first-pass match this confident ends the search

    # Runtime.
    runtime: str = "onnxruntime"  # how the backbone runs: "onnxruntime" (fast on CPUs) or "torch"
    threads: int = 0  # torch, ONNX Runtime, OpenCV and faiss threads per engine; 0: every core of the machine
    # Predictors map a model version's descriptor graphs from disk instead of copying them, so the
    # predictors of one machine share one copy of the graphs in the file cache.
    map_indexes: bool = True
