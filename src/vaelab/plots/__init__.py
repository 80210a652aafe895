"""Figures: each function takes arrays and returns a matplotlib Figure (works in notebooks)."""

from vaelab.plots.images import image_grid, reconstructions, samples
from vaelab.plots.latent import latent_scatter, project_2d
from vaelab.plots.training import training_curves

__all__ = [
    "image_grid",
    "latent_scatter",
    "project_2d",
    "reconstructions",
    "samples",
    "training_curves",
]
