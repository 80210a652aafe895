"""TensorBoard adapter (``--log-to tensorboard``): event files in RUN/tensorboard/.

Every value is logged against the global optimisation step (``epoch * steps_per_epoch + i``,
1-based): per-step ``step/loss``, ``step/recon``, ``step/kl`` (from the trainer's per-epoch
buffer, read once per epoch), and at the end of each epoch ``train/*``, ``val/*``, ``lr``,
``beta`` and the epoch's sample grid (``sample_every_epoch``). At the end: ``test/*``, the
figures, the hyper-parameters with the test metrics (HPARAMS tab) and the test latent means
with labels and thumbnails (PROJECTOR tab). A resumed run appends to the same folder with
``purge_step`` at its first new step, so no step appears twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vaelab.tracking import flat_params, metric_name

if TYPE_CHECKING:
    from vaelab.config import Config
    from vaelab.run import Run
    from vaelab.train.loop import Trainer

STEP_PARTS = ("loss", "recon", "kl")
MAX_EMBEDDING = 10_000  # test points in the projector


def _png(path: Path) -> np.ndarray:
    """An image file as an HWC uint8 RGB array."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _hparam(value: Any) -> Any:
    """A config value as the hparams plugin accepts it (numbers, strings, bools)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


class TensorBoardTracker:
    """Writes one TensorBoard run per vaelab run (see module docstring)."""

    name = "tensorboard"

    def __init__(self, cfg: Config, run_dir: Path, resumed: bool) -> None:
        self.cfg = cfg
        self.resumed = resumed
        self.log_dir = run_dir / "tensorboard"
        self.writer: Any = None
        self.steps: int | None = None

    def start(self, work: Path) -> None:
        self.log_dir = work / "tensorboard"

    def _open(self, purge_step: int | None) -> Any:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.log_dir), purge_step=purge_step)
        return self.writer

    def on_epoch(self, trainer: Trainer, epoch: int, row: dict[str, Any]) -> None:
        buf = trainer.last_epoch_steps
        steps = len(buf) if buf is not None else 1
        self.steps = steps
        first = epoch * steps  # global steps of this epoch: first + 1 .. first + steps
        w = self._open(first + 1 if self.resumed else None)
        if buf is not None:
            names = [*STEP_PARTS, *trainer.extra_names]
            vals = buf[:, : len(names)].float().cpu().numpy()  # one host sync per epoch
            for i, step_vals in enumerate(vals):
                for name, v in zip(names, step_vals, strict=True):
                    w.add_scalar(f"step/{name}", float(v), first + i + 1)
        end = first + steps
        for key, value in row.items():
            name = metric_name(key)
            if name is not None and isinstance(value, (int, float)):
                w.add_scalar(name, float(value), end)
        w.add_scalar("epoch", float(epoch + 1), end)
        grid = self.log_dir.parent / "figures" / "epochs" / f"samples_epoch_{epoch + 1:03d}.png"
        if grid.exists():
            w.add_image("samples/epochs", _png(grid), end, dataformats="HWC")
        w.flush()

    def finish(self, run: Run, final_step: int) -> None:
        self.log_dir = run.path / "tensorboard"
        w = self._open(None)
        test = {k: float(v) for k, v in run.metrics.get("test", {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
        for k, v in test.items():
            w.add_scalar(f"test/{k}", v, final_step)
        for png in sorted((run.path / "figures").glob("*.png")):
            w.add_image(f"figures/{png.stem}", _png(png), final_step, dataformats="HWC")
        self._hparams(w, test, final_step)
        self._embedding(w, run, final_step)
        w.close()
        self.writer = None

    def _hparams(self, w: Any, test: dict[str, float], step: int) -> None:
        """Hyper-parameters and the test metrics in this run's own folder (HPARAMS tab)."""
        from torch.utils.tensorboard.summary import hparams

        params = {k: _hparam(v) for k, v in flat_params(self.cfg).items()
                  if not k.startswith("train.log_to") and k != "train.mlflow_uri"}
        metrics = {f"test/{k}": v for k, v in test.items()}
        exp, ssi, sei = hparams(params, metrics)
        fw = w._get_file_writer()
        for summary in (exp, ssi, sei):
            fw.add_summary(summary, step)

    def _embedding(self, w: Any, run: Run, step: int) -> None:
        """Test latent means with labels (and thumbnails for images) for the projector."""
        import torch

        lat = run.latents()
        mu = np.asarray(lat["mu"])[:MAX_EMBEDDING]
        if mu.ndim != 2 or len(mu) == 0:
            return
        metadata = None
        if "y" in lat:
            names = run.saved_json("config.json").get("label_names") or []
            y = np.asarray(lat["y"])[: len(mu)]
            metadata = [str(names[int(v)]) if 0 <= int(v) < len(names) else str(int(v))
                        for v in y]
        label_img = None
        x = np.asarray(run.data.test.x[: len(mu)])
        if x.ndim == 4:
            img = run.preprocessor.inverse(x).astype(np.float32)
            lo, hi = float(img.min()), float(img.max())
            img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
            label_img = torch.as_tensor(img)
        w.add_embedding(torch.as_tensor(mu, dtype=torch.float32), metadata=metadata,
                        label_img=label_img, global_step=step, tag="test_latents")

    def close(self, exc: BaseException | None) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def make(cfg: Config, run_dir: Path, resumed: bool) -> TensorBoardTracker:
    return TensorBoardTracker(cfg, run_dir, resumed)
