"""`vaelab export RUN --format onnx [--out DIR]`: the encoder and decoder as ONNX files."""

from __future__ import annotations

import click

from vaelab.errors import ConfigError


def register(group: click.Group) -> None:
    @group.command()
    @click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False))
    @click.option("--format", "fmt", default="onnx", show_default=True,
                  help="Export format (only onnx for now).")
    @click.option("--out", default=None, type=click.Path(file_okay=False),
                  help="Folder for the files [default: RUN/export].")
    def export(run_dir: str, fmt: str, out: str | None) -> None:
        """Write encoder.onnx, decoder.onnx and export.json (names, shapes, preprocessing) so the
        model runs with onnxruntime alone (see docs/export.md)."""
        from vaelab.export import FORMATS, export_onnx

        if fmt.lower() not in FORMATS:
            raise ConfigError(f"--format got {fmt!r}; only {', '.join(FORMATS)} is supported "
                              "for now.")
        folder = export_onnx(run_dir, out)
        click.echo(f"wrote {folder / 'encoder.onnx'}, {folder / 'decoder.onnx'} and "
                   f"{folder / 'export.json'}")
