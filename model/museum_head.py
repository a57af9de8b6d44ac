"""The museum embedding: a small head over the backbone's CNN cells, trained on the collection.

The backbone's own global embedding (the generalised mean of its cells) comes from a network
trained on ImageNet, not on photos of framed paintings. On estensi it put the right painting among
the 10 nearest for only about a quarter of the whole-photo queries. The head maps each cell through
a linear layer and a ReLU, pools the result with a generalised mean and projects it to a short
L2-normalised embedding. A training run fits it so that simulated phone photos of each painting
embed next to that painting (see `model.train_head`).

The head works on cells the engine computes anyway: embedding the 1,728 cells of a 768 px photo
took about 2 ms on 2 cores. Its weights are stored in a model version's trained-model file under
the key "museum_head".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CHECKPOINT_KEY = "museum_head"


class MuseumHead(nn.Module):
    """Cells (n, cell_dim) in, one L2-normalised embedding (embedding_dim,) out."""

    def __init__(self, cell_dim: int, hidden: int = 256, embedding_dim: int = 128, power: float = 3.0) -> None:
        super().__init__()
        self.cell_dim, self.hidden, self.embedding_dim = cell_dim, hidden, embedding_dim
        self.cells = nn.Linear(cell_dim, hidden)
        self.projection = nn.Linear(hidden, embedding_dim)
        self.power = power

    def forward(self, cells: torch.Tensor) -> torch.Tensor:
        activations = F.relu(self.cells(cells))
        pooled = activations.clamp(min=1e-6).pow(self.power).mean(dim=0).pow(1.0 / self.power)
        return F.normalize(self.projection(pooled), dim=0)

    def shape(self) -> dict:
        """Return the constructor arguments, stored beside the weights."""
        return {"cell_dim": self.cell_dim, "hidden": self.hidden, "embedding_dim": self.embedding_dim}


class MuseumHeadEncoder:
    """Inference wrapper: a view's CNN cells in, its museum embedding out."""

    def __init__(self, head: MuseumHead) -> None:
        self._head = head.eval()
        self.embedding_dim = head.embedding_dim
        self.cell_dim = head.cell_dim

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "MuseumHeadEncoder | None":
        """Load the head from a trained-model file; None when the file has no head."""
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        saved = checkpoint.get(CHECKPOINT_KEY)
        if saved is None:
            return None
        head = MuseumHead(**saved["shape"])
        head.load_state_dict(saved["state"])
        return cls(head)

    @torch.no_grad()
    def embed(self, cells: np.ndarray) -> np.ndarray | None:
        """Embed one view's cells; None for a view without cells."""
        if len(cells) == 0:
            return None
        return self._head(torch.from_numpy(np.ascontiguousarray(cells, np.float32))).numpy().astype(np.float32)


def head_state(head: MuseumHead) -> dict:
    """Return the entry to store under CHECKPOINT_KEY in a trained-model file."""
    return {"shape": head.shape(), "state": head.state_dict()}
