"""Shared fixtures: tiny in-memory data and quick configs."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
# vaelab's cache (downloads, FID feature extractors) in a folder of this session, not the user's
os.environ["VAELAB_CACHE"] = tempfile.mkdtemp(prefix="vaelab-test-cache-")
atexit.register(shutil.rmtree, os.environ["VAELAB_CACHE"], True)
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def quick(tmp_path):
    """Keyword overrides for a fast Digits run into a temporary folder."""
    return {
        "dataset": "digits",
        "epochs": 3,
        "batch_size": 64,
        "hidden": [64, 32],
        "progress": False,
        "out": str(tmp_path / "run"),
    }
