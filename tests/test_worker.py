"""vaelab's worker process (vaelab.worker): tasks run in another process, give the same results
as inline, report errors where the result is used, and fall back inline when it is gone."""

from __future__ import annotations

import os

import numpy as np
import pytest

import vaelab
from vaelab import worker
from vaelab.samplers import fit_gmm_arrays


def _blobs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]])
    return centres[rng.integers(0, 3, n)] + rng.normal(0, 0.5, (n, 2))


def test_tasks_run_in_another_process_with_inline_results():
    w = worker.Worker()
    try:
        assert w.submit("ping").result(timeout=60) not in (os.getpid(), None)
        train, val = _blobs(600, 0), _blobs(200, 1)
        far = w.submit("gmm", train, val, 0, (1, 3))
        weights, means, covs, info = far.result(timeout=60)
        inline = fit_gmm_arrays(train, val, 0, (1, 3))
        assert info["k"] == inline[3]["k"] == 3
        np.testing.assert_allclose(weights, inline[0])
        np.testing.assert_allclose(means, inline[1])
        np.testing.assert_allclose(covs, inline[2])
        points = w.submit("tsne", np.random.default_rng(0).normal(size=(60, 5)), 0)
        assert points.result(timeout=60).shape == (60, 2)
    finally:
        w.close()
    assert w.proc.poll() is not None  # closing ends the child


def test_an_error_in_a_task_is_raised_where_the_result_is_read():
    w = worker.Worker()
    try:
        bad = w.submit("gmm", np.zeros((1, 2)), None, 0, (1,))  # one code cannot be fitted
        with pytest.raises(RuntimeError, match="gmm failed in the vaelab worker"):
            bad.result(timeout=60)
        assert w.submit("ping").result(timeout=60) != os.getpid()  # it keeps serving
    finally:
        w.close()


def test_a_dead_worker_falls_back_to_inline():
    w = worker.Worker()
    w.proc.kill()
    w.proc.wait()
    fut = w.submit("ping")
    assert fut.result(timeout=60) == os.getpid()  # ran here


def test_disabled_worker_runs_inline(monkeypatch):
    monkeypatch.setenv(worker.DISABLE_ENV, "1")
    assert worker.get_worker() is None
    assert worker.submit("ping").result() == os.getpid()


def test_warm_then_wait_ready_answers_once_the_imports_are_done(monkeypatch):
    monkeypatch.delenv(worker.DISABLE_ENV, raising=False)
    worker.warm()
    started = worker._READY
    assert started is not None and started[0] is worker.get_worker()
    assert worker.wait_ready(timeout=60)  # the first ping, answered after the imports
    assert started[1].result() not in (os.getpid(), None)
    worker.warm()  # the same worker: no second ping
    assert worker._READY is started


def test_the_worker_exits_when_its_client_goes():
    """It exits as soon as its pipe closes (the `vaelab` program ends with os._exit, so no
    close() comes), with its client's priority (the client waits on it)."""
    w = worker.Worker()
    try:
        pid = w.submit("ping").result(timeout=60)
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0)
        w.proc.stdin.close()  # what the kernel does when the client process ends
        assert w.proc.wait(timeout=10) == 0
    finally:
        w.close()


def test_finishing_beside_the_worker_leaves_it_a_core():
    """pipeline.cores_beside_worker: one torch and one BLAS thread fewer while the worker
    runs, both restored after."""
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    from vaelab.pipeline import cores_beside_worker

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    old = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        worker.warm()
        assert worker.active()
        with threadpool_limits(limits=3, user_api="blas"):
            before = blas_threads()
            assert before and all(n == 3 for n in before), before
            with cores_beside_worker():
                assert torch.get_num_threads() == 2
                assert all(n == 2 for n in blas_threads()), blas_threads()
            assert torch.get_num_threads() == 3 and blas_threads() == before
    finally:
        torch.set_num_threads(old)


def test_figures_are_drawn_here_and_in_the_worker_from_one_queue(tmp_path, monkeypatch):
    """figures.draw_jobs: both processes take drawings from the queue (this one draws fewer
    than all), every file is written, and a drawing that fails in the worker raises here."""
    from matplotlib.figure import Figure

    from vaelab import figures

    worker.warm()
    assert worker.active()
    here = []
    real = figures.save_figure
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: here.append(path) or
                        real(fig, path))
    rng = np.random.default_rng(0)
    spec = figures.FigureSpec("t", "t", "t", lambda run: None)
    jobs = [(spec, tmp_path / f"s{i}.png",
             figures.Drawing("vaelab.plots.analysis:latent_histograms",
                             (rng.normal(size=(500, 12)),)))
            for i in range(6)]
    figures.draw_jobs(jobs)
    assert all(path.stat().st_size > 0 for _, path, _ in jobs)
    assert 0 < len(here) < len(jobs)
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    bad = figures.Drawing("vaelab.plots.images:samples", (np.zeros((2, 3, 4, 5, 6)),))
    with pytest.raises(RuntimeError, match="draw failed in the vaelab worker"):
        figures.draw_jobs([(spec, tmp_path / "ok.png", fig), (spec, tmp_path / "bad.png", bad)])
    assert (tmp_path / "ok.png").exists()


def test_the_costliest_figures_are_drawn_first(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from vaelab import figures

    monkeypatch.setattr(worker, "active", lambda: False)  # everything drawn here, in order
    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: drawn.append(path.name))
    jobs = [(figures.FigureSpec(name, name, "", lambda run: None, cost=cost),
             tmp_path / name, Figure()) for name, cost in (("a", 1), ("b", 5), ("c", 3),
                                                           ("d", 1))]
    figures.draw_jobs(jobs)
    assert drawn == ["b", "c", "a", "d"]


def test_figures_drawn_in_the_worker_land_in_a_relative_run_folder_after_a_chdir(
        tmp_path, monkeypatch):
    """The worker process keeps the folder it started in; a caller that changed folder since
    (a notebook's os.chdir) and trains into a relative out path still gets every figure."""
    worker.warm()
    worker.wait_ready(timeout=60)
    monkeypatch.chdir(tmp_path)
    run = vaelab.train(dataset="digits", epochs=1, hidden=[16], latent_dim=3, eval_k=2,
                       progress=False, log=None, report=False, out="runs/r")
    assert worker.active()
    names = {p.name for p in (tmp_path / "runs" / "r" / "figures").glob("*.png")}
    assert {"latent_histograms.png", "latent_traversals.png", "samples.png"} <= names
    assert run.status == "finished"
