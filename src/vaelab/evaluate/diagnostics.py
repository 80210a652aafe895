"""Rule-based advice after training: posterior collapse, over-weighted KL, likelihood misfit.

Each finding is {"issue", "evidence", "advice"}: what is wrong, the numbers that show it, and
the options to change. Thresholds are rules of thumb, stated in docs/evaluation.md.
"""

from __future__ import annotations

from typing import Any

COLLAPSE_KL_PER_DIM = 0.1  # nats per latent dimension, below which the code carries ~nothing
BLURRY_EXPLAINED = 0.5  # reconstructions explaining less of the test variance look blurry
SMALL_KL_SHARE = 0.05  # a KL below this share of the negative ELBO is not what blurs them


def diagnose(metrics: dict[str, Any], config: dict[str, Any], data_range: tuple[float, float],
             variational: bool) -> list[dict[str, str]]:
    """A list of {"issue", "evidence", "advice"} found in the test metrics."""
    out: list[dict[str, str]] = []
    model = config.get("model", {})
    latent = int(model.get("latent_dim", 0) or metrics.get("latent_dim", 0))
    beta = float(model.get("beta", 1.0))
    lik = config.get("resolved", {}).get("likelihood", "")
    sigma = float(model.get("sigma", 1.0))
    au = metrics.get("active_units")
    explained = metrics.get("explained_variance")
    if lik == "mixed":  # a table by column: the variance of its encoded layout (one-hot slots,
        explained = None  # observed flags) says nothing; metrics.json "columns" has each fit
    if variational:
        kl = float(metrics.get("kl", 0.0))
        collapsed = kl < COLLAPSE_KL_PER_DIM * max(latent, 1) or au == 0
        if collapsed:
            out.append({
                "issue": "posterior collapse",
                "evidence": f"KL {kl:.3f} nats over {latent} dimensions, active units {au}",
                "advice": "the decoder ignores the code: use --kl-warmup-epochs 10, --free-bits "
                          "0.5, a smaller decoder (--hidden), or a lower --beta",
            })
        elif au is not None and latent >= 4 and au < latent / 2:
            out.append({
                "issue": "few active units",
                "evidence": f"{au} of {latent} latent dimensions carry information "
                            "(variance of their posterior mean over the test set > 0.01)",
                "advice": "a smaller --latent-dim loses nothing; or lower --beta to use more",
            })
        if explained is not None and explained < BLURRY_EXPLAINED and not collapsed:
            share = kl / max(float(metrics.get("neg_elbo", 0.0)), 1e-12)
            evidence = (f"reconstructions explain {explained:.0%} of the test variance; KL is "
                        f"{share:.0%} of the negative ELBO at beta {beta:g}")
            if share < SMALL_KL_SHARE and beta <= 1:
                out.append({
                    "issue": "underfitting reconstructions",
                    "evidence": evidence + " (the KL is not what holds them back)",
                    "advice": "train longer (--epochs), or raise --hidden or --latent-dim",
                })
            elif latent <= 2 and beta <= 1:
                out.append({
                    "issue": "blurry reconstructions (small latent)",
                    "evidence": evidence,
                    "advice": f"a {latent}-D latent keeps little detail: raise --latent-dim "
                              "(e.g. 16) for sharper reconstructions, or lower --beta (e.g. "
                              "0.5) if it must stay 2-D for plotting",
                })
            else:
                out.append({
                    "issue": "over-weighted KL (blurry reconstructions)",
                    "evidence": evidence,
                    "advice": "lower --beta (e.g. 0.5 or 0.1), raise --latent-dim, or train "
                              "longer (--epochs)",
                })
    elif explained is not None and explained < BLURRY_EXPLAINED:
        out.append({
            "issue": "underfitting reconstructions",
            "evidence": f"reconstructions explain {explained:.0%} of the test variance",
            "advice": "raise --latent-dim or --hidden, or train longer (--epochs)",
        })
    lo, hi = data_range
    if lik == "bernoulli" and (lo < -1e-6 or hi > 1 + 1e-6):
        out.append({
            "issue": "likelihood does not fit the data range",
            "evidence": f"Bernoulli likelihood on data in [{lo:.3g}, {hi:.3g}]",
            "advice": "use --preprocess minmax for a Bernoulli likelihood, or "
                      "--likelihood gaussian for standardised data",
        })
    elif variational and lik == "gaussian" and hi - lo <= 1 + 1e-6 and sigma >= 0.5:
        out.append({
            "issue": "likelihood too flat for the data range",
            "evidence": f"Gaussian likelihood with sigma {sigma:g} on data in "
                        f"[{lo:.3g}, {hi:.3g}]: a pixel's error changes its term by at most "
                        f"{0.5 / sigma**2:.2g} nats, so the KL dominates",
            "advice": "use --likelihood bernoulli for [0, 1] data, --likelihood "
                      "gaussian-learned, or a smaller --sigma (e.g. 0.1)",
        })
    return out
