"""examples/quickstart.ipynb runs top to bottom in a fresh kernel (so it cannot rot)."""

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_notebook_is_valid_and_stored_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs for c in code)
    text = "\n".join(c.source for c in code)
    for call in ("vaelab.train(", "latent_scatter(", "run.decode(", "Run.load("):
        assert call in text


@pytest.mark.slow
def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # training curves, latent space, decoded grid
    assert (tmp_path / "runs" / "quickstart" / "model.safetensors").exists()
    reload_cell = next(c for c in nb.cells if "Run.load(" in c.source)
    assert "True" in json.dumps(reload_cell.outputs)
    assert "'latent_scatter.png'" in json.dumps(nb.cells[-1].outputs)
