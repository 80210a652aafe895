"""Capture a whole training step (batch gather, forward, backward, Adam) in one CUDA graph.

On a GPU a small model's step is bound by kernel launches and host work, not arithmetic: dozens
of kernels of a few microseconds each. Replaying a captured graph launches them all at once.
The batch is gathered inside the graph from the device-resident training tensor through a
static index buffer, so each step costs one small copy and one replay. The learning rate lives
in a tensor (Adam with ``capturable=True``) so schedules keep working after capture.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

StepFn = Callable[[Tensor, Tensor | None], Tensor]


class GraphedStep:
    """Replays a captured ``step_fn(x[idx], y[idx])`` for full batches of ``batch_size`` rows."""

    def __init__(self, step_fn: StepFn, x: Tensor, y: Tensor | None, batch_size: int,
                 warmup: int = 3) -> None:
        self.x, self.y = x, y
        self.idx = torch.arange(batch_size, device=x.device)
        stream = torch.cuda.Stream(device=x.device)
        stream.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(stream):  # warm-up outside the graph, as CUDA graphs require
            for _ in range(warmup):
                step_fn(x[self.idx], None if y is None else y[self.idx])
        torch.cuda.current_stream(x.device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = step_fn(x[self.idx], None if y is None else y[self.idx])

    def __call__(self, idx: Tensor) -> Tensor:
        self.idx.copy_(idx, non_blocking=True)
        self.graph.replay()
        return self.out


def make_capturable_adam(model: torch.nn.Module, lr: float, weight_decay: float
                         ) -> torch.optim.Adam:
    """Fused Adam whose learning rate is a device tensor, so a captured step sees LR changes."""
    dev = next(model.parameters()).device
    return torch.optim.Adam(model.parameters(), lr=torch.tensor(lr, device=dev),
                            weight_decay=weight_decay, fused=True, capturable=True)
