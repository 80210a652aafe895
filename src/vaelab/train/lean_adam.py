"""Adam without the import of ``torch._dynamo`` that every torch optimiser pays on first use.

``torch.optim.Optimizer``'s bookkeeping methods (``add_param_group``, ``zero_grad``,
``state_dict``, ``load_state_dict``) are wrapped in ``torch._disable_dynamo``, which imports
the compiler stack (about 1.1 s and 70 MB on 2 cores, holding the GIL) the first time one runs,
only so that ``torch.compile`` does not trace into them. vaelab never compiles code that calls
them (``--compile`` compiles the loss alone), so ``LeanAdam`` calls the methods' undecorated
bodies: the same state, the same ``state_dict`` format, the same numbers. ``step()`` is
Adam's own (it imports the compiler stack when it runs); the fused CPU step updates the weights
through ``fused.DirectAdam``, which initialises the state as Adam's first step does, so a run
on that path never imports it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.optimizer import Optimizer


def _undecorated(method: Any) -> Any:
    """The body under ``torch._disable_dynamo``'s wrapper, or the method itself."""
    return getattr(method, "__wrapped__", method)


_ADD_PARAM_GROUP = _undecorated(Optimizer.add_param_group)
_ZERO_GRAD = _undecorated(Optimizer.zero_grad)
_STATE_DICT = _undecorated(Optimizer.state_dict)
_LOAD_STATE_DICT = _undecorated(Optimizer.load_state_dict)


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam`` whose bookkeeping skips ``torch._dynamo``'s disable wrapper."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _ADD_PARAM_GROUP(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _ZERO_GRAD(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return _STATE_DICT(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _LOAD_STATE_DICT(self, state_dict)
