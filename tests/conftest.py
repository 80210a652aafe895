"""Shared fixtures: tiny in-memory data and quick configs."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Under pytest-xdist (`make test` runs one test process per core) each process, and every
# process it starts, uses one thread: two-thread torch on a core shared with another busy
# process waits on itself (tiny models ran 4-8x slower that way).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = "1"

import numpy as np
import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
# vaelab's cache (downloads, FID feature extractors) in a folder of this session, not the user's
os.environ["VAELAB_CACHE"] = tempfile.mkdtemp(prefix="vaelab-test-cache-")
atexit.register(shutil.rmtree, os.environ["VAELAB_CACHE"], True)
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else
                      min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def kinds(tmp_path_factory):
    """The scenario matrix's datasets (tests/scenario_kit.py), made once per test process for
    both scenario files."""
    from scenario_kit import make_kinds

    return make_kinds(tmp_path_factory)


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


LONG_FILES = ("test_scenarios.py", "test_scenarios_tables.py", "test_image_folders.py",
              "test_data_streaming.py", "test_resume.py")
"""The files that take longest, collected first: with one test process per core
(`make test`), the longest file starts at once instead of ending the run alone."""


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        name = item.path.name
        return LONG_FILES.index(name) if name in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: the order inside each file is kept
