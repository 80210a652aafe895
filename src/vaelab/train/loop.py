"""The training loop: device-resident data, index-slice batches, no host sync inside an epoch.

Per epoch: shuffle with one permutation, step through slices, accumulate the loss parts on the
device, read them once, validate, keep the best weights (by validation objective), apply the
LR schedule and early stopping, and call the epoch callbacks.

Training phases: the model lists them (``BaseModel.phases()``; one phase by default). They run
in order, each with its own Adam and LR schedule over its parameters and its own loss, one
global epoch count across them. Best weights and early stopping are per phase: a phase keeps
the weights of its best validation epoch, ends there (patience ends the phase, not the run,
unless it is the last), loads them, and the next phase starts from them with a fresh best.
So a later phase is judged only by its own objective, and the final best weights are the best
of the last phase on top of the best of the earlier ones. Checkpoints record the phase.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from vaelab.errors import TrainingError
from vaelab.models import BaseModel
from vaelab.train.budget import TimeBudget
from vaelab.train.config import TrainConfig
from vaelab.train.schedules import kl_warmup_factor, lr_factor

if TYPE_CHECKING:
    from vaelab.models.base import TrainingPhase

EpochCallback = Callable[["Trainer", int, dict[str, Any]], None]


@dataclass
class TrainState:
    """What the loop has produced so far."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int = -1
    best_state: dict[str, Tensor] | None = None
    stopped_early: bool = False
    stop_reason: str | None = None
    """Why training stopped before its last epoch (early stopping, a callback's StopTraining)."""
    epochs_done: int = 0


def to_device_tensor(
    a: np.ndarray | None, device: torch.device, dtype: torch.dtype = torch.float32
) -> Tensor | None:
    if a is None:
        return None
    if getattr(a, "streamed", False):  # larger than memory: chunk by chunk (train/streaming.py)
        from vaelab.train.streaming import StreamedRows

        return StreamedRows(a, device)  # type: ignore[return-value]
    from vaelab.data.pixels import PixelRows

    if isinstance(a, PixelRows) and dtype == torch.float32:  # integer pixels (train/rows.py)
        from vaelab.train.rows import pixel_rows_on

        return pixel_rows_on(a, device)  # type: ignore[return-value]
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype).to(device)


def take_rows(a: Tensor, idx: Tensor) -> Tensor:
    """Rows ``idx`` of ``a``: ``index_select`` for a tensor (2.5x faster on the CPU than
    ``a[idx]``'s advanced indexing for a batch of rows), ``a[idx]`` for streamed rows and
    integer pixels."""
    return a.index_select(0, idx) if isinstance(a, Tensor) else a[idx]


def make_adam(model: torch.nn.Module, cfg: TrainConfig, device: torch.device,
              params: list[torch.nn.Parameter] | None = None) -> torch.optim.Adam:
    """Adam over ``params`` (default: all of ``model``'s) with the fused kernel (CPU and
    CUDA), else the multi-tensor one; a ``LeanAdam``, which does not import torch's compiler."""
    kw: dict[str, Any] = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if params is not None:
        model = torch.nn.ParameterList(params)  # holds the same tensors
    if device.type == "cuda" and cfg.cuda_graphs:
        from vaelab.train.cuda_graph import make_capturable_adam

        return make_capturable_adam(model, cfg.lr, cfg.weight_decay)
    from vaelab.train.lean_adam import LeanAdam

    if device.type in ("cpu", "cuda"):
        try:
            return LeanAdam(model.parameters(), fused=True, **kw)
        except (RuntimeError, TypeError):
            pass
    return LeanAdam(model.parameters(), foreach=True, **kw)


class StopTraining(Exception):
    """Raised by an epoch callback to end training after this epoch, as early stopping does
    (the epoch is kept and checkpointed; the run is then finished normally). Its message is
    the reason recorded in metrics.json (``training.stop_reason``)."""


class Interrupted(Exception):
    """Raised inside the loop when a stop was requested (first Ctrl-C)."""

    def __init__(self, epoch: int, step: int, saved: bool = False) -> None:
        where = f"after step {step} of epoch {epoch}" if saved else \
            f"in epoch {epoch} at step {step}"
        super().__init__(f"interrupted {where}")
        self.epoch, self.step, self.saved = epoch, step, saved


class Trainer:
    """Optimise ``model`` on arrays held on ``device``; see module docstring."""

    PART_NAMES = ("loss", "recon", "kl")

    def __init__(
        self,
        model: BaseModel,
        cfg: TrainConfig,
        device: torch.device,
        *,
        dynamic_binarize: bool = False,
        callbacks: list[EpochCallback] | None = None,
        log: Callable[[str], None] | None = None,
        checkpoint_dir: Path | None = None,
        stop_flag: Any = None,
    ) -> None:
        self.model = model.to(device)
        self.cfg = cfg
        self.device = device
        self.dynamic_binarize = dynamic_binarize
        self.callbacks = list(callbacks or [])
        self.checkpoint_dir = checkpoint_dir
        self.stop_flag = stop_flag
        self.pending_rng: dict[str, Any] | None = None
        self.partial: dict[str, Any] | None = None  # a mid-epoch checkpoint being resumed
        self.log = log or (lambda msg: None)
        from vaelab.train import distributed

        self.dist = distributed.info()
        if self.dist.active:
            distributed.broadcast_parameters(self.model)
        self.state = TrainState()
        self.extra_names: list[str] = []
        self.last_epoch_steps: Tensor | None = None
        """The last epoch's per-step loss parts (steps x [loss, recon, kl, *extras], on the
        device) while the epoch callbacks run; trackers read it once per epoch."""
        self.budget = TimeBudget.from_config(cfg)
        """``--time-budget``: how much is spent and whether the next epoch fits."""
        self.phases = model.phases()
        self.enter_phase(0, 0)

    def enter_phase(self, index: int, start: int) -> None:
        """Make phase ``index`` (begun after ``start`` epochs) current: its optimiser, LR
        schedule, loss and step function."""
        from vaelab.train import distributed

        phase = self.phases[index]
        self.phase_index, self.phase_start = index, start
        self._params = phase.parameters
        cfg = self.cfg
        own = len(self.phases) > 1 or bool(phase.companions)  # the phase owns a subset
        self.optimizer = make_adam(self.model, cfg, self.device,
                                   phase.parameters if own else None)
        self.companions = [(c, torch.optim.Adam(c.parameters, lr=c.lr, betas=c.betas))
                           for c in phase.companions]
        """A phase's companion networks and their optimisers, stepped after each update."""
        if self.dist.active:
            distributed.install_grad_allreduce(self.optimizer)
            for _, opt in self.companions:
                distributed.install_grad_allreduce(opt)
        sched_cfg = cfg if phase.epochs is None else replace(cfg, epochs=phase.epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda e: lr_factor(sched_cfg, e, self._budget_progress(phase))
        )
        self._phase_loss = phase.loss
        self._loss_fn = phase.loss
        self._step_fn = self._choose_step()

    def phase_epochs(self, index: int) -> int:
        """Epochs of phase ``index``: its own count, or the run's ``epochs`` (unbounded with a
        time budget, which then decides)."""
        n = self.phases[index].epochs
        if n is None and self.budget is not None:
            return sys.maxsize - self.phase_start
        return self.cfg.epochs if n is None else n

    def _budget_progress(self, phase: TrainingPhase) -> float | None:
        """Share of the time budget spent, for a phase that the budget governs."""
        if self.budget is None or phase.epochs is not None:
            return None
        return self.budget.progress

    def _choose_step(self) -> Callable[[Tensor, Tensor | None], Tensor]:
        """The fused MLP-VAE step when it applies, else autograd (optionally compiled)."""
        from vaelab.train import fused

        if self.device.type == "cpu":
            from vaelab.train.perf import tune_cpu_allocator

            tune_cpu_allocator()
        cfg = self.cfg
        if fused.settings_allow(cfg, self.device.type == "cuda") and len(self.phases) == 1 \
                and not self.companions and fused.supports(self.model):
            return fused.FusedVAEStep(self.model, self.optimizer, cfg.grad_clip)
        if cfg.compile:
            self._loss_fn = torch.compile(self._phase_loss)  # forward + loss; autograd as usual
        return self._step

    # -- one optimisation step ---------------------------------------------------------------
    def _step(self, xb: Tensor, yb: Tensor | None) -> Tensor:
        autocast = self.cfg.precision == "bf16" and self.device.type in ("cuda", "cpu")
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
            parts = self._loss_fn(xb, yb)
        self.optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self._params, self.cfg.grad_clip, foreach=True)
        self.optimizer.step()
        for companion, opt in self.companions:  # e.g. a discriminator on the codes just made
            opt.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
                closs = companion.loss()
            closs.backward()
            opt.step()
        extras = [parts.extras[k].detach() for k in self.extra_names]
        return torch.stack([parts.total.detach(), parts.recon.detach(), parts.kl.detach(),
                            *extras]).float()

    def _train_on(self, xb: Tensor, yb: Tensor | None) -> Tensor:
        """One update on a batch (dynamic binarisation with the default generator)."""
        if self.dynamic_binarize:
            xb = torch.bernoulli(xb)
        return self._step_fn(xb, yb)

    def _capture(self, x: Tensor, y: Tensor | None, bs: int) -> Any:
        """A CUDA-graphed step for full batches, or None (CPU, disabled, or not capturable)."""
        if self.device.type != "cuda" or not self.cfg.cuda_graphs or len(x) < bs \
                or self.dist.active or not isinstance(x, Tensor) or self.companions:
            return None
        from vaelab.train.cuda_graph import GraphedStep

        model_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        rng = torch.cuda.get_rng_state(self.device)
        try:
            graphed = GraphedStep(self._train_on, x, y, bs)
        except Exception as exc:
            self.log(f"CUDA graph capture failed ({type(exc).__name__}: {exc}); training eagerly")
            graphed = None
        with torch.no_grad():  # undo the warm-up updates: the run starts from the same state
            for k, v in self.model.state_dict().items():
                v.copy_(model_state[k])
            for st in self.optimizer.state.values():
                for t in st.values():
                    if torch.is_tensor(t):
                        t.zero_()
        torch.cuda.set_rng_state(rng, self.device)
        return graphed

    def _discover_extras(self, x: Tensor, y: Tensor | None) -> None:
        """Learn the names of extra loss terms from one forward pass (no update)."""
        self.model.train()
        with torch.no_grad():
            parts = self._phase_loss(x[: min(len(x), 8)], None if y is None else y[:8])
        self.extra_names = sorted(parts.extras)

    # -- evaluation ----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor | None, batch_size: int = 1024) -> dict[str, float]:
        """Mean objective (final beta, no warm-up, no free bits), recon and KL over ``x``."""
        self.model.eval()
        saved_scale, self.model.kl_scale = self.model.kl_scale, 1.0
        sums = torch.zeros(3 + len(self.extra_names), device=self.device)
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            yb = None if y is None else y[start : start + batch_size]
            if self.dynamic_binarize:
                xb = torch.bernoulli(xb)
            parts = self._phase_loss(xb, yb)
            extras = [parts.extras[k] for k in self.extra_names]
            sums += torch.stack([parts.total, parts.recon, parts.kl, *extras]).float() * len(xb)
        self.model.kl_scale = saved_scale
        from vaelab.train.distributed import mean_across_ranks

        vals = mean_across_ranks(sums / max(len(x), 1)).tolist()
        names = [*self.PART_NAMES, *self.extra_names]
        return dict(zip(names, vals, strict=True))

    # -- the loop ------------------------------------------------------------------------------
    def fit(
        self,
        train_x: np.ndarray,
        train_y: np.ndarray | None,
        val_x: np.ndarray | None = None,
        val_y: np.ndarray | None = None,
        *,
        start_epoch: int = 0,
        resume_from: Path | None = None,
    ) -> TrainState:
        """Train from ``start_epoch`` (or from the checkpoint ``resume_from``) to cfg.epochs."""
        from vaelab.train import perf

        flush = self.device.type == "cpu" and self.cfg.flush_denormals \
            and not perf.flushing_denormals() and perf.flush_denormals(True)
        try:
            return self._fit(train_x, train_y, val_x, val_y, start_epoch=start_epoch,
                             resume_from=resume_from)
        finally:
            if flush:  # PyTorch's default again for whatever the caller does next
                perf.flush_denormals(False)

    def _fit(self, train_x: np.ndarray, train_y: np.ndarray | None, val_x: np.ndarray | None,
             val_y: np.ndarray | None, *, start_epoch: int, resume_from: Path | None
             ) -> TrainState:
        cfg = self.cfg
        dev = self.device
        if self.dist.active:  # each rank trains on its own equal-sized shard of the rows
            from vaelab.train.distributed import shard_rows

            rows = shard_rows(len(train_x), cfg.seed)
            train_x = train_x[rows]
            train_y = None if train_y is None else train_y[rows]
        x = to_device_tensor(train_x, dev)
        y = to_device_tensor(train_y, dev, torch.long)
        vx = to_device_tensor(val_x, dev) if val_x is not None else None
        vy = to_device_tensor(val_y, dev, torch.long) if val_x is not None else None
        n = len(x)
        self.model.train_rows = n
        bs = min(cfg.batch_size, n)
        steps = n // bs if n % bs == 1 else math.ceil(n / bs)  # never a batch of one
        if resume_from is not None:  # continue in the phase the checkpoint was taken in
            from vaelab.train.checkpoint import checkpoint_phase

            index, start = checkpoint_phase(resume_from)
            if not 0 <= index < len(self.phases):
                from vaelab.errors import RunDirError

                raise RunDirError(f"checkpoint {resume_from} was taken in training phase "
                                  f"{index}, which this model does not have; it cannot be "
                                  "resumed - start the run again with --force.")
            if (index, start) != (self.phase_index, self.phase_start):
                self.enter_phase(index, start)
        self._discover_extras(x, y)
        self._graphed = self._capture(x, y, bs)
        gen = torch.Generator(device=dev)
        gen.manual_seed(cfg.seed)
        self.generator = gen
        stopped = False  # the current phase has stopped early
        if resume_from is not None:
            from vaelab.train.checkpoint import apply_rng, load_checkpoint

            start_epoch = load_checkpoint(self, resume_from)
            apply_rng(self)
            if self.budget is not None:  # what earlier sessions spent counts
                self.budget = TimeBudget.from_config(cfg, self.state.history)
            if self.partial is None and start_epoch > self.phase_start \
                    and self._should_stop(start_epoch - 1):
                stopped = True  # the run (or this phase) had already stopped early
        self._weights = torch.full((steps,), float(bs), device=dev)  # rows in each step
        self._weights[-1] = n - (steps - 1) * bs
        left = 0 if stopped else max(self.phase_start + self.phase_epochs(self.phase_index)
                                     - start_epoch, 0)
        left += sum(self.phase_epochs(i) for i in range(self.phase_index + 1, len(self.phases)))
        bar = self._progress_bar(left, steps)
        if bar is not None and self.partial is not None:
            bar.update(self.partial["step"])
        epoch = start_epoch
        self._saved = (start_epoch if resume_from is not None and self.partial is None else -1,
                       time.perf_counter())
        try:
            while True:
                end = self.phase_start + self.phase_epochs(self.phase_index)
                requested: StopTraining | None = None
                while not stopped and epoch < end:
                    if self._budget_spent():
                        break
                    try:
                        self._run_epoch(epoch, x, y, vx, vy, n, bs, steps, bar)
                    except StopTraining as exc:  # raised by a callback once the epoch is done
                        requested = exc
                    epoch += 1
                    if time.perf_counter() - self._saved[1] >= cfg.checkpoint_every:
                        self._checkpoint(epoch)
                    if requested is not None:
                        break
                    if self._should_stop(epoch - 1):
                        stopped = True
                        self.state.stop_reason = (
                            f"validation loss has not improved for {cfg.patience} epochs")
                        what = "training" if self.phase_index == len(self.phases) - 1 else \
                            f"phase '{self.phases[self.phase_index].name}'"
                        self.log(
                            f"early stopping {what} after epoch {epoch}: validation loss has "
                            f"not improved for {cfg.patience} epochs (best epoch "
                            f"{self.state.best_epoch})"
                        )
                budget_hit = self.state.stop_reason == "time budget"  # set by _budget_spent
                if budget_hit:
                    self.state.stop_reason = self.budget.stop_reason()  # type: ignore[union-attr]
                    self.log(f"phase '{self.phases[self.phase_index].name}' stops after epoch "
                             f"{epoch}: {self.state.stop_reason}")
                self._checkpoint(epoch)  # the phase's (or the run's) end, if not written yet
                if requested is not None:
                    self.state.stopped_early = True
                    self.state.stop_reason = str(requested) or "stopped by a callback"
                    self.log(f"stopping after epoch {epoch}: {self.state.stop_reason}")
                    break
                if self.phase_index == len(self.phases) - 1:
                    self.state.stopped_early = stopped
                    if not stopped and not budget_hit:
                        self.state.stop_reason = None
                    break
                self._next_phase(epoch, x, y, bs)
                stopped = False
        finally:
            if bar is not None:
                bar.close()
        return self.state

    def _next_phase(self, epoch: int, x: Tensor, y: Tensor | None, bs: int) -> None:
        """End the current phase at its best weights and start the next one after ``epoch``
        epochs, with a fresh best (early stopping counts from the phase's start)."""
        self.restore_best()
        self.enter_phase(self.phase_index + 1, epoch)
        self.state.best_val = math.inf
        self.state.best_epoch = epoch
        self.state.best_state = None
        self._discover_extras(x, y)
        self._graphed = self._capture(x, y, bs)
        phase = self.phases[self.phase_index]
        self.log(f"phase '{phase.name}' after epoch {epoch}: {self.phase_epochs(self.phase_index)}"
                 " epoch(s)")

    def _run_epoch(self, epoch, x, y, vx, vy, n, bs, steps, bar) -> dict[str, Any]:
        cfg = self.cfg
        self.model.kl_scale = kl_warmup_factor(self.model.config.kl_warmup_epochs, epoch)
        self.model.train()
        t0 = time.perf_counter()
        gen_start = self.generator.get_state()  # lets a mid-epoch checkpoint redo the order
        perm = x.epoch_order(self.generator) if hasattr(x, "epoch_order") else \
            torch.randperm(n, generator=self.generator, device=self.device)
        # one row of loss parts per step, kept on the device: no host sync, and the first
        # non-finite step can be found after the epoch
        buf = torch.empty((steps, 3 + len(self.extra_names)), device=self.device)
        first, resume = 0, self.partial
        if resume is not None:  # continue a mid-epoch checkpoint (RNGs are already restored)
            self.partial = None
            first = resume["step"]
            buf[:first] = resume["parts"].to(self.device)
            t0 -= resume.get("time_s", 0.0)
        last_refresh = time.perf_counter()
        stop = self.stop_flag
        for i in range(first, steps):
            if stop is not None and stop.requested:
                self._stop_mid_epoch(epoch, i, first, buf, gen_start, time.perf_counter() - t0)
            idx = perm[i * bs : (i + 1) * bs] if i < steps - 1 else perm[i * bs :]
            if self._graphed is not None and len(idx) == bs:
                buf[i] = self._graphed(idx)
            else:
                yb = None if y is None else take_rows(y, idx)
                buf[i] = self._train_on(take_rows(x, idx), yb)
            if bar is not None:
                bar.update(1)
                now = time.perf_counter()
                if now - last_refresh > 0.5:  # the only host sync inside an epoch
                    last_refresh = now
                    cur = buf[: i + 1].mean(0).tolist()
                    bar.set_postfix(loss=f"{cur[0]:.2f}", recon=f"{cur[1]:.2f}",
                                    kl=f"{cur[2]:.2f}", refresh=False)
        from vaelab.train.distributed import mean_across_ranks

        sums = (buf * self._weights[:, None]).sum(0)
        train_vals = mean_across_ranks(sums / n).tolist()
        train_time = time.perf_counter() - t0
        names = [*self.PART_NAMES, *self.extra_names]
        row: dict[str, Any] = {"epoch": epoch + 1}
        row.update({f"train_{k}": v for k, v in zip(names, train_vals, strict=True)})
        if not all(math.isfinite(v) for v in train_vals[:3]) or not self._params_finite():
            self._non_finite(epoch, buf, steps)
        if vx is not None:
            val = self.evaluate(vx, vy, batch_size=max(bs, 1024))
            row.update({f"val_{k}": v for k, v in val.items()})
            monitor = val["loss"]
        else:
            monitor = train_vals[0]
        row["lr"] = float(self.optimizer.param_groups[0]["lr"])
        row["beta"] = self.model.config.beta * self.model.kl_scale
        row["time_s"] = train_time
        if len(self.phases) > 1:
            row["phase"] = self.phases[self.phase_index].name
        if self._budget_progress(self.phases[self.phase_index]) is not None:
            # training + validation: what an epoch costs the budget
            row["wall_s"] = self.budget.add(time.perf_counter() - t0)  # type: ignore[union-attr]
        self.scheduler.step()
        if monitor < self.state.best_val - cfg.min_delta:
            self.state.best_val = monitor
            self.state.best_epoch = epoch + 1
            self.state.best_state = {k: v.detach().clone()
                                     for k, v in self.model.state_dict().items()}
        self.state.history.append(row)
        self.state.epochs_done = epoch + 1
        if bar is not None:
            post = {"loss": f"{train_vals[0]:.2f}", "recon": f"{train_vals[1]:.2f}",
                    "kl": f"{train_vals[2]:.2f}"}
            if vx is not None:
                post["val"] = f"{row['val_loss']:.2f}"
            bar.set_postfix(post, refresh=True)
        self.last_epoch_steps = buf
        for cb in self.callbacks if self.dist.is_main else ():
            cb(self, epoch, row)
        return row

    def _params_finite(self) -> bool:
        """One host sync per epoch: are all weights still finite (a non-finite gradient shows
        up here even when every step's loss was finite)?"""
        flags = [torch.isfinite(p.detach()).all() for p in self.model.parameters()]
        return bool(torch.stack(flags).all()) if flags else True

    def _non_finite(self, epoch: int, buf: Tensor, steps: int) -> None:
        """Stop with the epoch and the first step whose loss was not finite."""
        bad = (~torch.isfinite(buf[:, :3]).all(1)).nonzero()
        step = int(bad[0]) + 1 if len(bad) else steps  # else: the last update's gradient
        raise TrainingError(
            f"the training loss or its gradient became non-finite in epoch {epoch + 1}, "
            f"step {step} of {steps}; lower --lr, add --grad-clip 1.0, or check that the "
            "likelihood and preprocessing fit the data (e.g. --likelihood gaussian for "
            "standardised data, --preprocess standardize for wide-ranged features); the best "
            "weights so far are kept."
        )

    def _checkpoint(self, epochs_done: int) -> None:
        """Write the resumable checkpoint after ``epochs_done`` complete epochs, unless it is
        the one written last (``checkpoint_every`` spaces them out; see ``TrainConfig``)."""
        if self.checkpoint_dir is None or not self.dist.is_main \
                or self._saved[0] == epochs_done or epochs_done == 0:
            return
        from vaelab.train.checkpoint import save_checkpoint

        save_checkpoint(self.checkpoint_dir, self, epochs_done)
        self._saved = (epochs_done, time.perf_counter())

    def _stop_mid_epoch(self, epoch: int, step: int, first: int, buf: Tensor,
                        gen_start: Tensor, elapsed: float) -> None:
        """First Ctrl-C: the current step has finished; checkpoint the state reached within
        the epoch (when it moved past the last checkpoint; at an epoch's first step, the
        epochs done when no checkpoint holds them yet) and raise :class:`Interrupted`."""
        if step == first == 0 and self._saved[0] != epoch and epoch > 0 \
                and self.checkpoint_dir is not None and self.dist.is_main \
                and self._params_finite():
            self.generator.set_state(gen_start)  # as before this epoch drew its row order
            self._checkpoint(epoch)
            raise Interrupted(epoch + 1, 0)
        if step > first and self.checkpoint_dir is not None and self.dist.is_main \
                and not self.dist.active and bool(torch.isfinite(buf[:step]).all()) \
                and self._params_finite():
            from vaelab.train.checkpoint import save_checkpoint

            save_checkpoint(self.checkpoint_dir, self, epoch, partial={
                "step": step, "parts": buf[:step], "generator": gen_start, "time_s": elapsed})
            raise Interrupted(epoch + 1, step, saved=True)
        raise Interrupted(epoch + 1, step)

    def _budget_spent(self) -> bool:
        """Whether the time budget ends training before the next epoch of this phase."""
        if self.budget is None or self.phases[self.phase_index].epochs is not None \
                or self.budget.next_fits():
            return False
        self.state.stop_reason = "time budget"
        return True

    def _should_stop(self, epoch: int) -> bool:
        p = self.cfg.patience
        return p is not None and (epoch + 1) - self.state.best_epoch >= p

    def _progress_bar(self, epochs: int, steps: int):
        if not self.cfg.progress or not self.dist.is_main:
            return None
        from tqdm.auto import tqdm

        if self.budget is not None:  # the budget decides how many steps: no total to show
            from vaelab.train.budget import format_duration

            return tqdm(total=None, unit="step", dynamic_ncols=True, leave=True,
                        desc=f"training (budget {format_duration(self.budget.seconds)})")
        return tqdm(total=epochs * steps, unit="step", desc="training", dynamic_ncols=True,
                    leave=True)

    def restore_best(self) -> None:
        """Load the best-validation weights into the model."""
        if self.state.best_state is not None:
            self.model.load_state_dict(self.state.best_state)
