"""Settings of the training loop."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    """How to optimise: the options users know from Keras `fit` and the PyTorch examples."""

    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "constant"
    """constant, step, exponential or cosine."""
    lr_step_size: int = 10
    """Epochs between decays of the step schedule."""
    lr_gamma: float = 0.5
    """Decay factor: per step_size epochs (step) or per epoch (exponential)."""
    lr_min: float = 0.0
    """Floor of the cosine schedule."""
    weight_decay: float = 0.0
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
    fused_step: bool = True
    """Use the hand-written step for plain MLP VAEs (same gradients as autograd, faster)."""
    sample_every_epoch: bool = False
    """Save a grid of samples after every epoch (figures/epochs/)."""
    progress: bool = True
