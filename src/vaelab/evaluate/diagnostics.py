"""Rule-based advice after training: posterior collapse, over-weighted KL, likelihood misfit."""

from __future__ import annotations

from typing import Any


def diagnose(metrics: dict[str, Any], config: dict[str, Any], data_range: tuple[float, float],
             variational: bool) -> list[dict[str, str]]:
    """A list of {"issue", "evidence", "advice"} found in the test metrics."""
    out: list[dict[str, str]] = []
    model = config.get("model", {})
    latent = int(model.get("latent_dim", 0))
    beta = float(model.get("beta", 1.0))
    lik = config.get("resolved", {}).get("likelihood", "")
    if variational:
        kl = float(metrics.get("kl", 0.0))
        au = metrics.get("active_units")
        if kl < 0.1 * max(latent, 1) or au == 0:
            out.append({
                "issue": "posterior collapse",
                "evidence": f"KL {kl:.3f} nats over {latent} dimensions, active units {au}",
                "advice": "the decoder ignores the code: use --kl-warmup-epochs 10, --free-bits "
                          "0.5, a smaller decoder, or a lower --beta",
            })
        elif au is not None and latent >= 4 and au < latent / 2:
            out.append({
                "issue": "few active units",
                "evidence": f"{au} of {latent} latent dimensions carry information",
                "advice": "a smaller --latent-dim loses nothing; or lower --beta to use more",
            })
        explained = metrics.get("explained_variance")
        if explained is not None and explained < 0.5 and beta >= 1:
            out.append({
                "issue": "over-weighted KL (blurry reconstructions)",
                "evidence": f"reconstructions explain {explained:.0%} of the test variance "
                            f"with beta {beta:g}",
                "advice": "lower --beta (e.g. 0.5 or 0.1), raise --latent-dim, or train longer",
            })
    lo, hi = data_range
    if lik == "bernoulli" and (lo < -1e-6 or hi > 1 + 1e-6):
        out.append({
            "issue": "likelihood does not fit the data range",
            "evidence": f"Bernoulli likelihood on data in [{lo:.3g}, {hi:.3g}]",
            "advice": "use --preprocess minmax for a Bernoulli likelihood, or "
                      "--likelihood gaussian for standardised data",
        })
    return out
