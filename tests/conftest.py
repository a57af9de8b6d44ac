"""Fixtures shared by all test folders."""

import os
import sys
from pathlib import Path

import pytest

# Thespian's TCP transport would pick a non-loopback address without this.
os.environ.setdefault("THESPIAN_BASE_IPADDR", "127.0.0.1")
# Helper modules in this folder (such as sample_data) are imported by plain name. The repository
# root goes first, so that `supervisors` is the package and not the test folder of that name.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sample_data import write_small_dataset  # noqa: E402


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset") / "set"
    write_small_dataset(root)
    return root
