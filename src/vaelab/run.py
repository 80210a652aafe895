"""A run directory and the objects rebuilt from it (config, model, data, history, metrics).

Everything after training reads a run directory, so any step can be re-run alone.
"""

from __future__ import annotations

import csv
import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaelab.config import Config
from vaelab.data import DataSplits, Preprocessor, load_data
from vaelab.errors import RunDirError, VaelabError
from vaelab.modelio import atomic_write_text, load_model
from vaelab.models import BaseModel

RUN_FILES = ("config.json", "model.safetensors", "model.json", "history.csv", "metrics.json")


class Run:
    """A finished (or loaded) run: ``Run.load(path)`` rebuilds everything from the folder."""

    def __init__(self, path: str | Path, config: Config, model: BaseModel | None = None,
                 data: DataSplits | None = None) -> None:
        self.path = Path(path)
        self.config = config
        self._model = model
        if data is not None:
            self.__dict__["data"] = data

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Run:
        """Open a run directory; the model is rebuilt from model.safetensors + model.json."""
        path = Path(path)
        if not path.is_dir():
            raise RunDirError(f"{path} is not a run directory; pass the folder `vaelab train` "
                              "wrote (it holds config.json and model.safetensors).")
        cfg_path = path / "config.json"
        if not cfg_path.exists():
            raise RunDirError(f"{cfg_path} is missing; {path} is not a complete vaelab run.")
        try:
            raw = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{cfg_path} is not valid JSON ({exc}).") from None
        raw = {k: v for k, v in raw.items() if k in ("data", "model", "train", "out", "name")}
        config = Config.from_dict(raw, source=str(cfg_path))
        run = cls(path, config)
        run._model = load_model(path, device=device)
        return run

    @property
    def model(self) -> BaseModel:
        if self._model is None:
            self._model = load_model(self.path)
        return self._model

    @cached_property
    def data(self) -> DataSplits:
        """The run's splits, reloaded with its config and seed (same rows, same preprocessing)."""
        cfg = self.config
        return load_data(cfg.data, seed=cfg.train.seed, batch_size=cfg.train.batch_size)

    @property
    def preprocessor(self) -> Preprocessor:
        saved = self.saved_json("config.json").get("preprocessing")
        if saved:
            return Preprocessor.from_dict(saved)
        return self.data.preprocessor

    # -- files ---------------------------------------------------------------------------------
    def saved_json(self, name: str) -> dict[str, Any]:
        p = self.path / name
        if not p.exists():
            return {}
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{p} is not valid JSON ({exc}).") from None

    @property
    def status(self) -> str:
        """From run.json: 'finished', 'interrupted' (Ctrl-C), 'failed' (e.g. a non-finite
        loss) or 'running' (still training, or killed: ``vaelab train --resume`` continues it).
        Runs written before run.json existed count as finished."""
        return str(self.saved_json("run.json").get("status", "finished"))

    @property
    def metrics(self) -> dict[str, Any]:
        return self.saved_json("metrics.json")

    @property
    def history(self) -> list[dict[str, Any]]:
        return read_history(self.path / "history.csv")

    def latents(self) -> dict[str, np.ndarray]:
        """Test-set latent means (mu), log-variances (logvar) and labels (y), cached in a file."""
        p = self.path / "latents.npz"
        if p.exists():
            with np.load(p, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        from vaelab.evaluate import encode_dataset

        test = self.data.test
        mu, lv = encode_dataset(self.model, test.x, test.y)
        out = {"mu": mu}
        if lv is not None:
            out["logvar"] = lv
        if test.y is not None:
            out["y"] = test.y
        tmp = p.with_name(".latents.tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(p)
        return out

    # -- model helpers in data space -----------------------------------------------------------
    def _tensor(self, x: np.ndarray, dtype=torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=self.device)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def reconstruct(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        self.model.eval()
        yt = self._tensor(y, torch.long) if (y is not None and self.model.uses_labels) else None
        return self.model.reconstruct(self._tensor(x), yt).float().cpu().numpy()

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, y: np.ndarray | None = None,
               sampler: str = "prior") -> np.ndarray:
        """Decoder means of n codes from ``sampler`` (prior or gmm, see vaelab.samplers; a
        GMM is fitted and saved on first use). Label-conditioned models without ``y`` cycle
        through the classes."""
        from vaelab.samplers import load_sampler

        self.model.eval()
        z = load_sampler(self, sampler).codes(n, seed=seed, device=self.device)
        yt = self._tensor(y, torch.long) if y is not None else None
        if self.model.uses_labels and yt is None:
            k = self.model.spec.num_classes or 1
            yt = torch.arange(n, device=self.device) % k
        return self.model.decode_mean(z, yt).float().cpu().numpy()

    def decode(self, z: np.ndarray, y: np.ndarray | int | None = None) -> np.ndarray:
        """Decoder means of codes z (batched; ``y``: one label or one per code, cvae)."""
        from vaelab.latent import decode

        return decode(self.model, z, y)

    def __repr__(self) -> str:
        m = self.metrics.get("test", {})
        extra = f", test neg_elbo={m['neg_elbo']:.3f}" if "neg_elbo" in m else ""
        return f"Run({str(self.path)!r}, model={self.config.model.model}{extra})"


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        conv: dict[str, Any] = {}
        for k, v in r.items():
            try:
                conv[k] = float(v) if v not in ("", None) else None
            except ValueError:
                conv[k] = v
        out.append(conv)
    return out


def write_history(path: Path, history: list[dict[str, Any]]) -> None:
    """Write history.csv atomically with a fixed column order (stable across runs)."""
    cols: list[str] = []
    for row in history:
        for k in row:
            if k not in cols:
                cols.append(k)
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def check_run_dir(path: Path) -> None:
    """Raise a clear error when ``path`` is not a complete run directory."""
    if not path.is_dir():
        raise RunDirError(f"{path} is not a run directory; pass a folder written by vaelab train.")
    missing = [f for f in ("config.json", "model.json", "model.safetensors")
               if not (path / f).exists()]
    if missing:
        raise RunDirError(f"{path} lacks {', '.join(missing)}; it is not a finished vaelab run.")


__all__ = ["RUN_FILES", "Run", "VaelabError", "check_run_dir", "read_history", "write_history"]
