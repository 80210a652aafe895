"""The seed experiments as recipes, and the notebook."""

import filecmp
import json
from pathlib import Path

import pytest

from vaelab.recipes import available, recipe_path, run_recipe, variants

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_examples_are_the_packaged_recipes():
    names = available()
    assert len(names) == 5
    for name in names:
        assert filecmp.cmp(EXAMPLES / f"{name}.toml", recipe_path(name), shallow=False), name


def test_recipe_prefix_and_variants():
    assert recipe_path("003").name == "003_pytorch_vae.toml"
    assert [v for v, _ in variants(recipe_path("004"))] == ["main", "deep-ae", "denoising-ae"]


@pytest.mark.slow
@pytest.mark.parametrize("name", available())
def test_each_recipe_runs_one_epoch_on_a_subset(name, tmp_path):
    extra = {} if name.startswith("000") else {"dataset": "mnist-5k"}
    runs = run_recipe(name, tmp_path / name, log=None, epochs=1, subset=300, eval_k=5,
                      progress=False, **extra)
    assert len(runs) == len(variants(recipe_path(name)))
    for run in runs:
        assert (run.path / "report.html").exists()
        m = json.loads((run.path / "metrics.json").read_text())["test"]
        assert "active_units" in m
    if name.startswith("003"):
        assert (runs[0].path / "figures" / "epochs" / "samples_epoch_001.png").exists()
    if name.startswith("004"):
        assert (runs[2].path / "figures" / "denoising.png").exists()
        assert (runs[0].path / "figures" / "latent_tsne.png").exists()


@pytest.mark.slow
def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    monkeypatch.chdir(tmp_path)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert (tmp_path / "runs" / "quickstart" / "model.safetensors").exists()
    assert "True" in json.dumps(nb.cells[-1]["outputs"])
