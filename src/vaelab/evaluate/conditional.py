"""Does a conditional model generate the class it is asked for?

``class_consistency`` draws ``n_per_class`` prior samples for every class and classifies them
with the Fréchet-distance feature net of ``fid.py`` (its full classifier, head included: the same
fixed recipe, trained on the run's training split and cached like the one ``fid_metric`` uses).
The share classified as the class asked for is the metric; chance is 1 / classes, and the
classifier's own accuracy on real test images, reported beside it, is the practical ceiling.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from vaelab.evaluate.fid import FeatureNet
    from vaelab.run import Run


@torch.no_grad()
def predict(net: FeatureNet, x: np.ndarray, batch: int = 2048) -> np.ndarray:
    """The feature net's class predictions for ``x`` (model-space arrays, any example shape)."""
    out = [net(torch.as_tensor(np.asarray(x[i : i + batch]), dtype=torch.float32)).argmax(1)
           for i in range(0, len(x), batch)]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def class_consistency(run: Run, n_per_class: int = 200, seed: int = 0,
                      cache: Path | bool | None = True, n_real: int = 2000) -> dict[str, Any]:
    """Share of class-conditional samples that the fid classifier assigns to their class.

    Returns ``class_consistency`` (overall), ``class_consistency_per_class`` (one share per class
    index), ``class_consistency_n`` (samples scored), ``class_consistency_chance`` and
    ``class_consistency_real`` (the classifier's accuracy on the first ``n_real`` labelled test
    images: what the metric can be compared with). ``cache`` as in ``fid_metric``: True =
    vaelab's cache folder, a path, or None / False to always retrain the classifier.
    Raises ValueError for a model whose decoder does not read the label
    (``label_conditioned`` is False).
    """
    from vaelab.evaluate.fid import feature_net

    model = run.model
    if not model.label_conditioned:
        raise ValueError(f"class_consistency needs a conditional model (cvae); this run is "
                         f"{model.config.model!r}, whose samples do not depend on a label.")
    if cache is True:
        from vaelab.data.download import cache_dir

        cache = cache_dir() / "fid"
    data = run.data
    classes = int(data.num_classes or model.spec.num_classes or 1)
    net = feature_net(data.train.x, data.train.y, classes, cache or None)
    y = np.repeat(np.arange(classes), n_per_class)
    pred = predict(net, run.sample(len(y), seed=seed, y=y))
    hit = pred == y
    out: dict[str, Any] = {
        "class_consistency": float(hit.mean()),
        "class_consistency_per_class": [float(hit[y == c].mean()) for c in range(classes)],
        "class_consistency_n": len(y),
        "class_consistency_chance": 1.0 / classes,
    }
    ty = np.asarray(data.test.y) if data.test.y is not None else None
    if ty is not None and (ty >= 0).any():
        keep = np.flatnonzero(ty >= 0)[:n_real]
        tx = np.asarray(data.test.x[: int(keep[-1]) + 1])[keep]
        out["class_consistency_real"] = float(np.mean(predict(net, tx) == ty[keep]))
    return out
