"""Integer training pixels kept as stored (vaelab.data.pixels, vaelab.train.rows): the rows
read, the batches trained on and the training itself are those of the float32 copy they
replace, in a quarter of the memory."""

from __future__ import annotations

import numpy as np
import torch

from vaelab.data.config import DataConfig
from vaelab.data.dataset import Dataset
from vaelab.data.pixels import PixelRows
from vaelab.data.preprocessing import Preprocessor
from vaelab.data.registry import RawData
from vaelab.data.splits import split_and_preprocess
from vaelab.models import ModelConfig, ModelSpec, build_model
from vaelab.train.config import TrainConfig
from vaelab.train.loop import Trainer, take_rows, to_device_tensor
from vaelab.train.rows import ScaledRows


def _pixels(n: int, seed: int = 0, lo: int = 3, hi: int = 250) -> np.ndarray:
    """Procedural 8x8 uint8 images: a bright square at a random place on noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(lo, lo + 40, (n, 1, 8, 8)).astype(np.uint8)
    for i, (r, c) in enumerate(rng.integers(0, 5, (n, 2))):
        x[i, 0, r : r + 3, c : c + 3] = rng.integers(hi - 30, hi + 1)
    return x


def _splits(x: np.ndarray, **cfg) -> tuple:
    raw = RawData(train=Dataset(x, np.arange(len(x)) % 3, "px"), default_preprocess="minmax")
    return split_and_preprocess(raw, DataConfig(dataset="px", test_fraction=0.2, **cfg),
                                seed=0, batch_size=16)


def test_training_pixels_stay_integers_and_read_as_the_float_copy():
    x = _pixels(400)
    data = _splits(x, val_fraction=0.1)
    tr = data.train.x
    assert isinstance(tr, PixelRows) and tr.pixels.dtype == np.uint8
    assert tr.pixels.nbytes * 4 == np.asarray(tr).nbytes  # a quarter of the float32 copy
    assert isinstance(data.val.x, np.ndarray) and isinstance(data.test.x, np.ndarray)
    want = Preprocessor("minmax", data.preprocessor.params)._transform(tr.pixels)
    assert np.array_equal(np.asarray(tr), want) and np.asarray(tr).dtype == np.float32
    assert np.array_equal(tr[5:9], want[5:9]) and np.array_equal(tr[7], want[7])
    idx = np.array([9, 2, 2, 30])
    view = tr[idx]
    assert isinstance(view, PixelRows) and np.array_equal(np.asarray(view), want[idx])
    assert np.array_equal(np.asarray(view.take(np.array([3, 0]))), want[[30, 9]])
    assert tr.shape == want.shape and len(tr) == len(want) and tr.ndim == 4
    # the whole data set: values 3 .. 250 scaled to [0, 1] as the preprocessing states
    assert data.preprocessor.params["min"] == 3.0 and np.asarray(tr).max() <= 1.0


def test_flattened_or_standardised_data_stay_float_arrays():
    x = _pixels(200)
    assert isinstance(_splits(x, flatten=True).train.x, np.ndarray)
    assert isinstance(_splits(x, preprocess="standardize").train.x, np.ndarray)
    assert isinstance(_splits(x.astype(np.float32)).train.x, np.ndarray)


def test_the_trainers_batches_are_the_preprocessed_rows():
    data = _splits(_pixels(300, seed=1))
    rows = to_device_tensor(data.train.x, torch.device("cpu"))
    assert isinstance(rows, ScaledRows) and rows.pixels.dtype == torch.uint8
    want = np.asarray(data.train.x)
    idx = torch.tensor([4, 0, 17, 4])
    assert np.array_equal(take_rows(rows, idx).numpy(), want[idx.numpy()])
    assert np.array_equal(rows[10:20].numpy(), want[10:20])
    # every one of the 256 values, with a lower bound that is not 0
    pre = Preprocessor("minmax", {"min": 7.0, "max": 200.0})
    every = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16)
    scaled = ScaledRows(torch.from_numpy(every), *map(float, pre.unit_affine()))
    assert np.array_equal(scaled[0:1].numpy(), pre._transform(every))


def test_training_on_pixels_is_training_on_their_float_copy():
    """Same seed, same model: the pixel path trains exactly as the float32 array did."""
    data = _splits(_pixels(320, seed=2))
    floats = np.asarray(data.train.x)
    histories = []
    for x in (data.train.x, floats):
        torch.manual_seed(0)
        model = build_model(ModelConfig(model="vae", hidden=[32], latent_dim=3),
                            ModelSpec((1, 8, 8), "bernoulli"))
        cfg = TrainConfig(epochs=3, batch_size=32, lr=3e-3, seed=0, progress=False)
        state = Trainer(model, cfg, torch.device("cpu")).fit(x, None, None, None)
        histories.append([r["train_loss"] for r in state.history])
    assert histories[0] == histories[1]
    assert histories[0][-1] < histories[0][0]  # and it learns
