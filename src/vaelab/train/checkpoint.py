"""Checkpoints for ``--resume``: weights, optimiser, scheduler, history, RNG states. The trainer
writes one after an epoch when ``TrainConfig.checkpoint_every`` seconds have passed since the
last, at the end of each phase and after the last epoch (``Trainer._checkpoint``).

Layout: ``checkpoints/epoch-NNNN/`` holds ``state.safetensors`` (model weights, the best
weights so far, optimiser tensors, RNG states as uint8 tensors) and ``state.json`` (epoch,
history, best epoch / value, scheduler and optimiser scalars, numpy and Python RNG states).
A checkpoint folder is written under a temporary name and renamed when complete; then
``checkpoints/LATEST`` (written atomically) names it and older folders are removed. A crash at
any moment leaves the previous complete checkpoint in force. Nothing is pickled.

A first Ctrl-C writes a mid-epoch checkpoint ``epoch-NNNN-step-SSSSS`` (NNNN epochs complete,
SSSSS steps of the next one done): it adds the loss parts of those steps and the permutation
generator's state at the start of the epoch, so that resuming redoes the same row order and
continues at the next step with the same numbers as an uninterrupted run.

state.json also records the training phase (``phase``: index into the model's ``phases()``,
``phase_name``, ``phase_start``: epochs done when it began); the optimiser, scheduler, best
weights and best value stored are that phase's, so ``--resume`` re-enters it (a checkpoint
without these keys is phase 0 from epoch 0). A phase's companion networks (FactorVAE's
discriminator) are part of the model's weights; their optimisers' tensors are stored as
``companion.<name>.opt.*`` and their scalars under ``companions`` in state.json.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from vaelab.errors import RunDirError
from vaelab.modelio import atomic_write_text, save_safetensors

LATEST = "LATEST"


def _rng_tensors(trainer: Any) -> dict[str, torch.Tensor]:
    out = {"rng.torch_cpu": torch.get_rng_state(),
           "rng.generator": trainer.generator.get_state().cpu()}
    if torch.cuda.is_available() and trainer.device.type == "cuda":
        out["rng.torch_cuda"] = torch.cuda.get_rng_state(trainer.device)
    return out


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": [], "state_scalars": {}}
    for g in sd["param_groups"]:
        scalars["param_groups"].append(
            {k: (float(v) if torch.is_tensor(v) else v) for k, v in g.items()})
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars["state_scalars"][f"{pid}.{k}"] = v
    return tensors, scalars


def save_checkpoint(folder: Path, trainer: Any, epoch: int,
                    partial: dict[str, Any] | None = None) -> Path:
    """Write the state after ``epoch`` (1-based, completed) and make it the latest.

    ``partial`` (``step``, ``parts``, ``generator``, ``time_s``) marks a checkpoint taken
    ``step`` steps into the next epoch.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{epoch:04d}" + (f"-step-{partial['step']:05d}" if partial else "")
    for stale in folder.glob(".epoch-*.tmp-*"):  # left by a process killed while saving
        shutil.rmtree(stale, ignore_errors=True)
    tmp = folder / f".{name}.tmp-{os.getpid()}"
    tmp.mkdir()
    tensors = {f"model.{k}": v.detach().cpu().contiguous()
               for k, v in trainer.model.state_dict().items()}
    if trainer.state.best_state is not None:
        tensors.update({f"best.{k}": v.detach().cpu().contiguous()
                        for k, v in trainer.state.best_state.items()})
    opt_t, opt_s = _optimizer_tensors(trainer.optimizer)
    tensors.update(opt_t)
    companion_s = {}
    for companion, opt in getattr(trainer, "companions", []):
        c_t, companion_s[companion.name] = _optimizer_tensors(opt)
        tensors.update({f"companion.{companion.name}.{k}": v for k, v in c_t.items()})
    tensors.update(_rng_tensors(trainer))
    if partial:
        tensors["rng.generator"] = partial["generator"].cpu()  # as at the start of the epoch
        tensors["partial.parts"] = partial["parts"].detach().float().cpu().contiguous()
    save_safetensors(tensors, tmp / "state.safetensors")
    np_state = np.random.get_state()
    meta = {
        "epoch": epoch,
        "step": partial["step"] if partial else 0,
        "time_s": partial["time_s"] if partial else 0.0,
        "history": trainer.state.history,
        "best_val": trainer.state.best_val,
        "best_epoch": trainer.state.best_epoch,
        "phase": trainer.phase_index,
        "phase_name": trainer.phases[trainer.phase_index].name,
        "phase_start": trainer.phase_start,
        "scheduler": {k: v for k, v in trainer.scheduler.state_dict().items()
                      if isinstance(v, (int, float, list, str, type(None)))},
        "optimizer": opt_s,
        "companions": companion_s,
        "numpy_rng": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python_rng": _py_state(random.getstate()),
    }
    with open(tmp / "state.json", "w", encoding="utf-8") as fh:
        json.dump(meta, fh)
        fh.flush()
        os.fsync(fh.fileno())
    final = folder / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write_text(folder / LATEST, name + "\n")
    _fsync_dir(folder)
    for old in folder.glob("epoch-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_dir(folder: Path) -> None:
    """Make the renames in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _py_state(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint ``LATEST`` names, else the newest complete one, else None."""
    pointer = folder / LATEST
    try:
        path = folder / pointer.read_text(encoding="utf-8").strip()
        if path.name.startswith("epoch-") and (path / "state.json").exists():
            return path
    except (OSError, UnicodeDecodeError):
        pass
    done = sorted(p for p in folder.glob("epoch-*") if (p / "state.json").exists())
    return done[-1] if done else None


def checkpoint_info(path: Path) -> tuple[int, int]:
    """(epochs complete, steps done in the next epoch) of a checkpoint folder."""
    try:
        meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
        return int(meta["epoch"]), int(meta.get("step", 0))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"checkpoint {path} is unreadable ({exc}); it cannot be resumed - "
                          "start the run again with --force.") from None


def checkpoint_phase(path: Path) -> tuple[int, int]:
    """(phase index, epochs done when that phase began) of a checkpoint folder."""
    try:
        meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
        return int(meta.get("phase", 0)), int(meta.get("phase_start", 0))
    except (OSError, ValueError, TypeError) as exc:
        raise RunDirError(f"checkpoint {path} is unreadable ({exc}); it cannot be resumed - "
                          "start the run again with --force.") from None


def load_checkpoint(trainer: Any, path: Path) -> int:
    """Restore ``trainer`` (model, optimiser, scheduler, state, RNGs); return the epoch done.

    A mid-epoch checkpoint also sets ``trainer.partial`` (step and loss parts so far).
    """
    try:
        meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
        tensors = load_file(str(path / "state.safetensors"))
    except (OSError, ValueError, SafetensorError) as exc:
        raise RunDirError(f"checkpoint {path} is unreadable ({exc}); it cannot be resumed - "
                          "start the run again with --force.") from None
    try:
        epoch = _restore(trainer, meta, tensors)
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        raise RunDirError(
            f"checkpoint {path} does not fit this run ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); it cannot be resumed - start "
            "the run again with --force."
        ) from None
    return epoch


def _restore(trainer: Any, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> int:
    phase = int(meta.get("phase", 0))
    if phase != trainer.phase_index or phase >= len(trainer.phases) or \
            meta.get("phase_name", trainer.phases[phase].name) != trainer.phases[phase].name:
        raise ValueError(f"it was taken in training phase {meta.get('phase_name', phase)!r}, "
                         "which this model does not have there")
    model_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    trainer.model.load_state_dict(model_sd)
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    dev = trainer.device
    trainer.state.best_state = {k: v.to(dev) for k, v in best.items()} or None
    trainer.state.history = meta["history"]
    trainer.state.best_val = meta["best_val"]
    trainer.state.best_epoch = meta["best_epoch"]
    trainer.state.epochs_done = meta["epoch"]
    _restore_optimizer(trainer.optimizer, meta["optimizer"], tensors, "opt.")
    saved_companions = meta.get("companions", {})
    for companion, opt in getattr(trainer, "companions", []):
        if companion.name not in saved_companions:
            raise ValueError(f"it holds no optimiser state for {companion.name!r}")
        _restore_optimizer(opt, saved_companions[companion.name], tensors,
                           f"companion.{companion.name}.opt.")
    trainer.scheduler.load_state_dict({**trainer.scheduler.state_dict(), **meta["scheduler"]})
    trainer.pending_rng = {
        "torch_cpu": tensors["rng.torch_cpu"],
        "generator": tensors["rng.generator"],
        "torch_cuda": tensors.get("rng.torch_cuda"),
        "numpy": meta["numpy_rng"],
        "python": meta["python_rng"],
    }
    step = int(meta.get("step", 0))
    trainer.partial = None
    if step:
        trainer.partial = {"step": step, "parts": tensors["partial.parts"],
                           "time_s": float(meta.get("time_s", 0.0))}
    return int(meta["epoch"])


def _restore_optimizer(optimizer: torch.optim.Optimizer, saved: dict[str, Any],
                       tensors: dict[str, torch.Tensor], prefix: str) -> None:
    """Rebuild an optimiser's state from its tensors (``prefix`` + pid.key) and scalars."""
    opt_sd = optimizer.state_dict()
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith(prefix):
            pid, key = k[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[key] = v
    for k, v in saved["state_scalars"].items():
        pid, key = k.split(".", 1)
        state.setdefault(int(pid), {})[key] = v
    groups = opt_sd["param_groups"]
    for g, saved_group in zip(groups, saved["param_groups"], strict=True):
        for key, val in saved_group.items():
            if key == "params":
                continue
            if torch.is_tensor(g.get(key)):  # capturable Adam keeps lr in a device tensor
                g[key].fill_(val)
            else:
                g[key] = val
    params = [p for g in optimizer.param_groups for p in g["params"]]
    live = optimizer.state
    if live and all(p in live for p in params):
        # a captured CUDA graph holds these exact tensors: copy values in place
        for i, p in enumerate(params):
            for key, val in state.get(i, {}).items():
                cur = live[p].get(key)
                if torch.is_tensor(cur):
                    cur.copy_(val)
                else:
                    live[p][key] = val
    else:
        optimizer.load_state_dict({"state": state, "param_groups": groups})


def apply_rng(trainer: Any) -> None:
    """Restore the RNG states saved with the checkpoint (called right before the next epoch)."""
    rng = getattr(trainer, "pending_rng", None)
    if not rng:
        return
    torch.set_rng_state(rng["torch_cpu"])
    trainer.generator.set_state(rng["generator"])
    if rng["torch_cuda"] is not None and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(rng["torch_cuda"], trainer.device)
    n = rng["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
    v, internal, gauss = rng["python"]
    random.setstate((v, tuple(internal), gauss))
    trainer.pending_rng = None
