"""Generated sample data in the dataset layout that `pain eval` and `pain import` read."""

import csv

import cv2

from model.synthetic import photograph, render_painting


def write_small_dataset(root):
    """Write four generated paintings and five photos (one of a painting not in the set)."""
    (root / "paintings").mkdir(parents=True)
    (root / "queries").mkdir()
    with (root / "paintings.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "title", "artist", "year", "medium", "description"])
        for seed in range(4):
            name = f"{seed:03d}.png"
            cv2.imwrite(str(root / "paintings" / name), render_painting(seed)[..., ::-1])
            writer.writerow([name, f"Title {seed}", "Artist", "1600", "oil on canvas", "A generated painting"])
    with (root / "queries.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "expected", "kind"])
        for seed in range(4):
            name = f"q{seed}.jpg"
            cv2.imwrite(str(root / "queries" / name), photograph(render_painting(seed), seed=seed)[..., ::-1])
            writer.writerow([name, f"{seed:03d}.png", "photo"])
        cv2.imwrite(str(root / "queries" / "stranger.jpg"), photograph(render_painting(99), seed=5)[..., ::-1])
        writer.writerow(["stranger.jpg", "", "photo"])
