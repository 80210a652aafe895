"""Integer pixels on the training device, scaled to float32 one batch at a time."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vaelab.data.pixels import PixelRows


class ScaledRows:
    """The trainer's view of :class:`~vaelab.data.pixels.PixelRows` on the CPU: the pixels
    stay integers on the device and ``x[idx]`` / ``x[a:b]`` give float32 rows,
    ``clip((p - lo) * scale, 0, 1)`` as the preprocessing computes it (the same values).
    Gathering and scaling a batch of 128 28x28 images took about 60 us on 2 cores, 2% of the
    784-400-20 VAE's 3 ms step."""

    def __init__(self, pixels: Tensor, lo: float, scale: float) -> None:
        self.pixels = pixels
        self.lo, self.scale = lo, scale

    def __len__(self) -> int:
        return len(self.pixels)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.pixels.shape)

    def scaled(self, raw: Tensor) -> Tensor:
        out = raw.to(torch.float32)
        if self.lo:  # p - 0 is p: the usual 0-255 pixels skip a pass
            out.sub_(self.lo)
        return out.mul_(self.scale).clamp_(0.0, 1.0)

    def __getitem__(self, key: Any) -> Tensor:
        if isinstance(key, Tensor) and key.ndim == 1 and key.dtype in (torch.int64, torch.int32):
            return self.scaled(self.pixels.index_select(0, key))
        return self.scaled(self.pixels[key])


def pixel_rows_on(rows: PixelRows, device: torch.device) -> ScaledRows | Tensor:
    """The training rows on ``device``: integer pixels scaled per batch on the CPU; one float32
    tensor on an accelerator (its memory is not the host's, and CUDA graphs need a tensor)."""
    with warnings.catch_warnings():  # read-only pixels (np.frombuffer): never written to
        warnings.simplefilter("ignore", UserWarning)
        pixels = torch.from_numpy(np.ascontiguousarray(rows.pixels))
    if device.type == "cpu":
        return ScaledRows(pixels, rows.lo, rows.scale)
    return ScaledRows(pixels.to(device), rows.lo, rows.scale)[:]
