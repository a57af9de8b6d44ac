"""Reader for the evaluation dataset layout (described in docs/datasets.md).

    DATASET/
      paintings.csv   image,title,artist,year,medium,description
      paintings/      reference images
      queries.csv     image,expected,kind
      queries/        photos; `expected` lists paintings/ files separated by ';', empty for none
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path


class DatasetError(ValueError):
    """A dataset that does not follow the layout, with the file and row at fault."""


@dataclass(frozen=True)
class PaintingRow:
    image: str
    title: str
    artist: str
    year: str
    medium: str
    description: str


@dataclass(frozen=True)
class QueryRow:
    image: str
    expected: tuple[str, ...]
    kind: str


@dataclass(frozen=True)
class Dataset:
    root: Path
    paintings: list[PaintingRow]
    queries: list[QueryRow]

    def painting_path(self, row: PaintingRow) -> Path:
        return self.root / "paintings" / row.image

    def query_path(self, row: QueryRow) -> Path:
        return self.root / "queries" / row.image


def read_dataset(root: str | Path, require_queries: bool = True) -> Dataset:
    """Read and check a dataset directory; raise DatasetError naming the first problem found."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset directory not found: {root}")

    paintings = [
        PaintingRow(
            image=row["image"],
            title=row.get("title") or "",
            artist=row.get("artist") or "",
            year=row.get("year") or "",
            medium=row.get("medium") or "",
            description=row.get("description") or "",
        )
        for row in _read_csv(root / "paintings.csv", ("image",))
    ]
    names = set()
    for line, row in enumerate(paintings, start=2):
        if not (root / "paintings" / row.image).is_file():
            raise DatasetError(f"paintings.csv line {line}: image file paintings/{row.image} not found")
        if row.image in names:
            raise DatasetError(f"paintings.csv line {line}: image {row.image} is listed twice")
        names.add(row.image)

    queries: list[QueryRow] = []
    if require_queries or (root / "queries.csv").exists():
        for line, row in enumerate(_read_csv(root / "queries.csv", ("image", "expected", "kind")), start=2):
            expected = tuple(name for name in (row["expected"] or "").split(";") if name)
            unknown = [name for name in expected if name not in names]
            if unknown:
                raise DatasetError(f"queries.csv line {line}: expected painting(s) {unknown} not in paintings.csv")
            if not (root / "queries" / row["image"]).is_file():
                raise DatasetError(f"queries.csv line {line}: image file queries/{row['image']} not found")
            queries.append(QueryRow(row["image"], expected, row["kind"] or "photo"))

    return Dataset(root, paintings, queries)


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"{path.name} not found in {path.parent}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in required if column not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{path.name}: missing column(s) {', '.join(missing)}")
        return list(reader)
