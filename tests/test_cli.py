import json
import subprocess
import sys

import pytest

from vaelab.cli.main import main

RUN_FILES = ["config.json", "model.safetensors", "model.json", "history.csv", "metrics.json",
             "latents.npz", "report.html", "figures/training_curves.png",
             "figures/reconstructions.png", "figures/samples.png",
             "figures/latent_scatter.png"]


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return int(exc.value.code or 0)


def test_cli_train_writes_every_file(tmp_path):
    out = tmp_path / "demo"
    code = cli("train", "--dataset", "digits", "--model", "vae", "--latent-dim", "2",
               "--epochs", "2", "--hidden", "32", "--out", str(out), "--quiet")
    assert code == 0
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    assert (out / "history.csv").read_text().count("\n") == 3  # header + 2 epochs


def test_same_seed_same_history(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert cli("train", "--epochs", "2", "--hidden", "32", "--seed", "7",
                   "--out", str(out), "--quiet") == 0
        outs.append(out)
    def strip_time(text: str) -> list[str]:
        rows = [r.split(",") for r in text.strip().splitlines()]
        col = rows[0].index("time_s")
        return [",".join(r[:col] + r[col + 1 :]) for r in rows]
    a, b = ((o / "history.csv").read_text() for o in outs)
    assert strip_time(a) == strip_time(b)


def test_config_file_and_flag_override(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[model]\nlatent_dim = 3\nhidden = [16]\n[train]\nepochs = 1\n')
    out = tmp_path / "r"
    assert cli("train", "--config", str(cfg), "--latent-dim", "4", "--out", str(out),
               "-q") == 0
    import json

    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["latent_dim"] == 4 and saved["model"]["hidden"] == [16]


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vaelab", *args], capture_output=True,
                          text=True, timeout=120)


def test_wrong_flag_is_one_line(tmp_path):
    res = _run_cli("train", "--latent-dimm", "2")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--latent-dimm" in lines[0]


def test_unknown_config_key_is_one_line(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[model]\nlatent = 2\n")
    res = _run_cli("train", "--config", str(cfg), "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown key 'latent'" in lines[0] and str(cfg) in lines[0]
    assert not (tmp_path / "r").exists()


HEAVY = ("torch", "numpy", "matplotlib", "sklearn", "scipy")


def test_help_and_import_load_no_heavy_library():
    """`vaelab --help`, `vaelab train --help` and `import vaelab` never import torch, numpy,
    matplotlib or scikit-learn: those load when a command needs them."""
    probe = (
        "import sys\n"
        "from vaelab.cli.main import main\n"
        "for argv in (['--help'], ['train', '--help'], ['sweep', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (argv, exc.code)\n"
        "import vaelab\n"
        "assert callable(vaelab.train) and callable(vaelab.sweep)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()
    assert out[-1] == "[]", out[-1]


def test_vaelab_train_stays_the_function_after_its_subpackage_loads():
    probe = ("import vaelab.train.loop, vaelab.sweep, vaelab.tune, vaelab\n"
             "print(callable(vaelab.train), callable(vaelab.sweep), callable(vaelab.tune))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "True True True"


def test_the_program_exits_fast_on_success_and_the_usual_way_on_failure(monkeypatch, capsys):
    """`vaelab` (cli.main.run) ends a successful command with os._exit(0) after flushing its
    output (no interpreter teardown); a failure keeps its exit status and normal exit."""
    import os

    from vaelab.cli import main as cli_main

    class FastExit(Exception):
        pass

    codes = []

    def fake_exit(code):
        codes.append(code)
        raise FastExit

    monkeypatch.setattr(os, "_exit", fake_exit)
    monkeypatch.setattr(sys, "argv", ["vaelab", "--version"])
    with pytest.raises(FastExit):
        cli_main.run()
    assert codes == [0] and "version" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["vaelab", "train", "--no-such-flag"])
    with pytest.raises(SystemExit) as err:
        cli_main.run()
    assert err.value.code == 2 and codes == [0]
    assert "no-such-flag" in capsys.readouterr().err


def test_vaelab_train_as_a_program_finishes_its_run(tmp_path):
    out = tmp_path / "run"
    r = _run_cli("train", "--dataset", "digits", "--epochs", "2", "--latent-dim", "2",
                 "--out", str(out), "-q")
    assert r.returncode == 0, r.stderr
    status = json.loads((out / "run.json").read_text())
    assert status["status"] == "finished"
    assert (out / "report.html").exists() and (out / "model.safetensors").exists()
