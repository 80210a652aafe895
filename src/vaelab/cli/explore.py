"""`vaelab explore RUN`: serve the latent explorer on 127.0.0.1 (or --host)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    @group.command()
    @click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False))
    @click.option("--port", default=8765, show_default=True)
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="Interface to listen on; 0.0.0.0 exposes it to your network.")
    def explore(run_dir: str, port: int, host: str) -> None:
        """Open the interactive latent-space explorer of a run in the browser."""
        import uvicorn

        from vaelab.explorer import create_app

        app = create_app(run_dir)
        click.echo(f"latent explorer of {run_dir}: http://{host}:{port}/  (Ctrl-C stops)")
        uvicorn.run(app, host=host, port=port, log_level="warning")
