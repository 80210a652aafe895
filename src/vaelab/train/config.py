"""Settings of the training loop."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TRACKERS = ("tensorboard", "mlflow")


@dataclass
class TrainConfig:
    """How to optimise: the options users know from Keras `fit` and the PyTorch examples."""

    epochs: int = 50
    """Training epochs (with --time-budget: as many as the budget buys, this setting ignored)."""
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "auto"
    """auto (constant; cosine over the budget with --time-budget), constant, step, exponential
    or cosine."""
    lr_step_size: int = 10
    """Epochs between decays of the step schedule."""
    lr_gamma: float = 0.5
    """Decay factor: per step_size epochs (step) or per epoch (exponential)."""
    lr_min: float = 0.0
    """Floor of the cosine schedule."""
    weight_decay: float = 0.0
    time_budget: str | None = None
    """Train until this much time is spent (90s, 5m, 1h30m, or seconds), stopping at an epoch
    boundary that does not overrun it; the cosine schedule then spans the budget."""
    checkpoint_every: float = 30.0
    """Seconds of training between resumable checkpoints (checkpoints/): one is written after
    the first epoch that ends this long after the last one, at the end of each training phase
    and after the last epoch; 0 writes one after every epoch. A killed run resumes from the
    latest; a first Ctrl-C writes one where it stops."""
    patience: int | None = None
    """Stop when validation loss has not improved for this many epochs."""
    min_delta: float = 0.0
    grad_clip: float | None = None
    device: str = "auto"
    """auto, cpu, cuda, cuda:N or mps."""
    seed: int = 0
    threads: int | None = None
    """CPU threads for torch (default: torch's choice)."""
    compile: bool = False
    precision: str = "fp32"
    """fp32 or bf16 (autocast on a GPU)."""
    cuda_graphs: bool = True
    """On a CUDA GPU, capture the training step in a CUDA graph (eager if it cannot be)."""
    eval_k: int = 100
    """Importance samples for the test log-likelihood (IWAE) estimate after training; 0 skips."""
    factor_metrics: str = "auto"
    """Disentanglement metrics when the data has factors: full (disentanglement_lib's counts),
    reduced (fewer points and votes), auto (full on a GPU, reduced otherwise) or off."""
    eval_rows: int = 1000
    """The first test rows that estimate uses (0 = all); metrics.json states the count and the
    standard error; `vaelab evaluate RUN --iwae-k 1000` measures every row."""
    fused_step: bool = True
    """Use the hand-written CPU step for MLP VAEs and VampPrior VAEs, on the ELBO or the IWAE
    bound (vae, iwae, vamp, vamp-iwae: same gradients as autograd, faster)."""
    flush_denormals: bool = True
    """On the CPU, flush denormal floats (below 1.2e-38) to zero while training: Adam's decaying
    moments of weights without gradient otherwise slow its update down 2-4x (train/perf.py)."""
    sample_every_epoch: bool = False
    """Save a grid of samples after every epoch (figures/epochs/)."""
    progress: bool = True
    log_to: list[str] = field(default_factory=list)
    """Experiment trackers to log to: tensorboard, mlflow or both (comma-separated)."""
    mlflow_uri: str | None = None
    """MLflow tracking URI (default: sqlite:///mlruns.db beside the run folder)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "log_to" and isinstance(value, (list, tuple)):
            from vaelab.errors import ConfigError

            unknown = [v for v in value if v not in TRACKERS]
            if unknown:
                raise ConfigError(
                    f"option 'log_to' got {unknown[0]!r}; choose from {', '.join(TRACKERS)} "
                    "(several allowed, e.g. --log-to tensorboard,mlflow)."
                )
            value = list(dict.fromkeys(value))
        super().__setattr__(name, value)


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m(?:in)?)?\s*"
                       r"(?:(\d+(?:\.\d+)?)\s*s?)?\s*$", re.IGNORECASE)


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration such as ``90``, ``90s``, ``5m``, ``1h30m`` or ``2.5min``."""
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        m = _DURATION.match(str(text))
        if not m or not any(m.groups()):
            raise ValueError(text)
        h, mi, sec = (float(g) if g else 0.0 for g in m.groups())
        seconds = 3600 * h + 60 * mi + sec
    if not seconds > 0:
        raise ValueError(text)
    return seconds
