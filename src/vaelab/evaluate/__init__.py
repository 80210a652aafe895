"""Test-split metrics of a trained model, in nats per example."""

from vaelab.evaluate.metrics import elbo_metrics, encode_dataset

__all__ = ["elbo_metrics", "encode_dataset"]
