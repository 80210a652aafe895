"""Interactive latent-space explorer: a small JSON API and one offline page over a run."""

from vaelab.explorer.app import create_app

__all__ = ["create_app"]
