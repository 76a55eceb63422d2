"""fastprop.distributed: the block tree in one process, and data-parallel fits under mpiexec.

The multi-rank tests run tests/_mpi_worker.py under `mpiexec -n R` (R = 2, 3) in a
subprocess with a timeout; they are skipped without mpi4py or mpiexec
(`pip install ".[mpi]"` from the clone).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastprop
from fastprop import distributed

WORKER = Path(__file__).with_name("_mpi_worker.py")


def data(t, l_0, l_n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(t, l_0)), rng.normal(size=(t, l_n))


# ---------------------------------------------------------------- one process


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_blocks_as_large_as_the_minibatch_are_plain_fit(dtype, shuffle):
    X, Y = data(101, 5, 2)
    kw = dict(epochs=3, lr=1e-3, batch_size=25, shuffle=shuffle, seed=2, optimizer="adam",
              validation_fraction=0.2)
    plain = fastprop.Network([5, 7, 2], dtype=dtype, seed=1, bias=True)
    plain.fit(X, Y, **kw)
    one_block = fastprop.Network([5, 7, 2], dtype=dtype, seed=1, bias=True)
    one_block.fit(X, Y, block_rows=25, **kw)
    assert np.array_equal(plain.params, one_block.params)


def tree_sum(values):
    """The tree of blocks.hpp, written as its recursion: node(h, j) = node(h-1, 2j) +
    node(h-1, 2j+1), the left alone when the right covers no block."""
    nb = len(values)
    H = int(np.ceil(np.log2(nb))) if nb > 1 else 0

    def node(h, j):
        if h == 0:
            return values[j]
        left, right_first = node(h - 1, 2 * j), (2 * j + 1) << (h - 1)
        return left if right_first >= nb else left + node(h - 1, 2 * j + 1)

    return node(H, 0)


@pytest.mark.parametrize("t, block_rows", [(45, 8), (64, 8), (7, 1), (30, 11)])
def test_block_gradients_are_summed_in_the_documented_tree(t, block_rows):
    X, Y = data(t, 4, 3)
    net = fastprop.Network([4, 6, 3], seed=0, bias=True, loss="sse")
    before = net.params.copy()
    blocks = [net.loss_and_grad(X[r:r + block_rows], Y[r:r + block_rows])[1]
              for r in range(0, t, block_rows)]
    g = tree_sum(blocks)
    assert np.abs(g).max() > 0
    lr = 1e-3
    net.fit(X, Y, epochs=1, lr=lr, block_rows=block_rows, optimizer="sgd")
    assert np.array_equal(net.params, before - lr * g)
    # and it is a different rounding of the same sum as one pass over the batch
    assert np.allclose(g, net.loss_and_grad(X, Y, before)[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_one_rank_is_network_fit_with_block_rows(dtype, shuffle):
    X, Y = data(203, 5, 3)
    w = np.random.default_rng(3).uniform(0.5, 1.5, size=203)
    kw = dict(epochs=3, lr=1e-3, batch_size=50, shuffle=shuffle, seed=5, optimizer="adam",
              validation_fraction=0.2, block_rows=16, sample_weight=w)
    one = fastprop.Network([5, 8, 3], dtype=dtype, seed=1, bias=True)
    h1 = one.fit(X, Y, **kw)
    net = fastprop.Network([5, 8, 3], dtype=dtype, seed=1, bias=True)
    h = distributed.fit(net, X, Y, **kw)
    assert np.array_equal(net.params, one.params)
    assert np.array_equal(np.asarray(h), np.asarray(h1))
    assert np.array_equal(h.val_loss, h1.val_loss)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kw", [
    dict(optimizer="adam", batch_size=16, validation_fraction=0.2, patience=3),
    dict(optimizer="momentum", batch_size=32, patience=3, min_delta=1e9),  # stops at epoch 3
    dict(optimizer="rprop", batch_size=40, block_rows=8),
    dict(optimizer="sgd", lr=1e-3, batch_size=40, shuffle=False),
])
def test_a_fit_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(tmp_path, dtype, kw):
    X, Y = data(120, 5, 2)
    path = tmp_path / "run.npz"
    whole = fastprop.Network([5, 6, 2], seed=1, dtype=dtype)
    h_whole = whole.fit(X, Y, epochs=9, seed=3, **kw)
    first = fastprop.Network([5, 6, 2], seed=1, dtype=dtype)
    h_first = first.fit(X, Y, epochs=9, seed=3, checkpoint=path, checkpoint_every=2,
                        callback=lambda epoch, logs: epoch < 1, **kw)
    assert len(h_first) == 2 and path.exists()
    resumed = fastprop.Network([5, 6, 2], seed=2, dtype=dtype)  # its parameters are replaced
    h = resumed.fit(X, Y, epochs=9, seed=3, checkpoint=path, checkpoint_every=2, **kw)
    assert np.array_equal(resumed.params, whole.params)
    assert np.array_equal(np.asarray(h), np.asarray(h_whole))
    assert h.stop == h_whole.stop and h.best_epoch == h_whole.best_epoch
    assert not [p for p in os.listdir(tmp_path) if p != "run.npz"]  # no temporary left


def test_a_checkpoint_of_another_fit_is_refused(tmp_path):
    X, Y = data(40, 5, 2)
    path = tmp_path / "run.npz"
    fastprop.Network([5, 6, 2], seed=1).fit(X, Y, epochs=2, lr=1e-3, checkpoint=path)
    with pytest.raises(ValueError, match="is of another fit.*batch_size"):
        fastprop.Network([5, 6, 2], seed=1).fit(X, Y, epochs=2, lr=1e-3, batch_size=8,
                                                checkpoint=path)


def test_a_checkpoint_of_another_seed_is_refused(tmp_path):
    X, Y = data(40, 5, 2)
    path = tmp_path / "run.npz"
    fastprop.Network([5, 6, 2], seed=1).fit(X, Y, epochs=2, lr=1e-3, batch_size=8, seed=1,
                                            checkpoint=path)
    with pytest.raises(ValueError, match="is of another fit.*seed"):
        fastprop.Network([5, 6, 2], seed=1).fit(X, Y, epochs=4, lr=1e-3, batch_size=8, seed=2,
                                                checkpoint=path)


def test_a_checkpoint_of_more_epochs_than_asked_for_is_refused(tmp_path):
    X, Y = data(40, 5, 2)
    path = tmp_path / "run.npz"
    fastprop.Network([5, 6, 2], seed=1).fit(X, Y, epochs=4, lr=1e-3, checkpoint=path)
    net = fastprop.Network([5, 6, 2], seed=1)
    before = net.params.copy()
    with pytest.raises(ValueError, match="holds 4 epochs, more than the 2 this fit asks for"):
        net.fit(X, Y, epochs=2, lr=1e-3, checkpoint=path)
    np.testing.assert_array_equal(net.params, before)


def test_a_checkpoint_path_that_is_not_a_checkpoint_is_refused_before_reading(tmp_path):
    X, Y = data(40, 5, 2)
    good = tmp_path / "good.npz"
    fastprop.Network([5, 6, 2], seed=1).fit(X, Y, epochs=2, lr=1e-3, checkpoint=good)
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)  # opening it for reading would block
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip" * 100)
    with np.load(good) as f:
        arrays = {k: f[k] for k in f.files}
    short = tmp_path / "short.npz"  # params of the wrong size would be broadcast
    np.savez(short, **{**arrays, "params": np.ones(1)})
    bomb = tmp_path / "bomb.npz"  # a history of another shape than the others'
    np.savez_compressed(bomb, **{**arrays, "loss": np.zeros((2, 4096))})
    for path, match in [(fifo, "not a regular file but a FIFO"), (tmp_path, "directory"),
                        (garbage, "not an .npz"), (short, r"params has shape \(1,\)"),
                        (bomb, "histories must be 1-D and of one length")]:
        net = fastprop.Network([5, 6, 2], seed=1)
        before = net.params.copy()
        with pytest.raises(ValueError, match=match):
            net.fit(X, Y, epochs=2, lr=1e-3, checkpoint=path)
        np.testing.assert_array_equal(net.params, before)


def test_block_rows_is_checked():
    X, Y = data(10, 2, 1)
    net = fastprop.Network([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match="block_rows"):
        net.fit(X, Y, epochs=1, lr=0.1, block_rows=0)
    with pytest.raises(ValueError, match="block_rows must be None"):
        net.fit(X, Y, epochs=1, optimizer="lm", block_rows=4)
    with pytest.raises(ValueError, match="lm"):
        distributed.fit(net, X, Y, epochs=1, optimizer="lm")


@pytest.mark.parametrize("kw, match", [
    (dict(block_rows=0), "block_rows"),
    (dict(checkpoint_every=0, checkpoint="x.npz"), "checkpoint_every"),
    (dict(lr_schedule=lambda epoch: 0.1), "callable or Adaptive"),
    (dict(optimizer="dpsgd"), "DP-SGD|per-sample|dpsgd"),
    (dict(batch_size=0), "batch_size"),
    (dict(patience=-1), "patience"),
])
def test_bad_arguments_of_distributed_fit_raise(kw, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, Y = data(20, 3, 2)
    net = fastprop.Network([3, 4, 2], seed=0)
    with pytest.raises(ValueError, match=match):
        distributed.fit(net, X, Y, epochs=1, lr=1e-3, **kw)


def test_import_fastprop_does_not_import_mpi4py():
    code = ("import sys, fastprop, fastprop.distributed; "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------- under mpiexec


def mpiexec() -> str:
    pytest.importorskip("mpi4py")
    found = shutil.which("mpiexec", path=os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        pytest.skip("mpiexec not found (pip install mpich)")
    return found


def run_ranks(ranks: int, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, FASTPROP_NUM_THREADS="1")
    return subprocess.run([mpiexec(), "-n", str(ranks), sys.executable, str(WORKER), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def assert_every_rank(result, ranks, line):
    assert result.returncode == 0, result.stdout + result.stderr
    for r in range(ranks):
        assert f"rank {r}: {line}" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("ranks", [2, 3, 4])
def test_ranks_give_the_bits_of_one_process(ranks):
    assert_every_rank(run_ranks(ranks, "identity"), ranks, "identity OK")


def test_memmap_parts(tmp_path):
    assert_every_rank(run_ranks(3, "memmap", str(tmp_path) + os.sep), 3, "memmap OK")


@pytest.mark.parametrize("ranks", [2, 3])
def test_arguments_that_differ_between_ranks_raise_on_every_rank(ranks):
    result = run_ranks(ranks, "mismatch")
    assert_every_rank(result, ranks, "mismatch OK")
    # the same message on every rank
    lines = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if "raised" in line]
    assert len(lines) == 7 * ranks
    assert len(set(lines)) == 7


@pytest.mark.parametrize("ranks", [2, 3])
def test_a_fault_on_one_rank_raises_on_every_rank(ranks):
    assert_every_rank(run_ranks(ranks, "faults"), ranks, "faults OK")


def test_sample_weights_are_checked_over_every_ranks_rows():
    assert_every_rank(run_ranks(2, "weights"), 2, "weights OK")


def test_one_rank_out_of_memory_ends_the_job():
    start = time.time()
    result = run_ranks(2, "out_of_memory", timeout=300)
    assert result.returncode != 0
    assert "rank 1 of 2 ran out of memory; ending the job" in result.stderr
    assert "not reached" not in result.stdout
    assert time.time() - start < 100


def test_ctrl_c_on_one_rank_ends_a_distributed_search():
    start = time.time()
    result = run_ranks(2, "search_interrupted", timeout=300)
    shown = result.stdout + result.stderr
    assert result.returncode != 0, shown
    assert "rank 1: interrupting myself" in result.stdout, shown
    assert "rank 1 of 2 interrupted; ending the job" in result.stderr, shown
    assert "not reached" not in result.stdout, shown
    assert time.time() - start < 100


def test_a_run_resumed_on_another_number_of_ranks_ends_as_one_process(tmp_path):
    path = str(tmp_path / "run.npz")
    assert_every_rank(run_ranks(2, "checkpoint_start", path), 2, "checkpoint_start OK")
    assert_every_rank(run_ranks(3, "checkpoint_resume", path), 3, "checkpoint_resume OK")


def test_a_killed_rank_ends_the_job_non_zero():
    start = time.time()
    result = run_ranks(2, "killed", timeout=300)
    end = time.time()
    assert result.returncode != 0
    assert "rank 1: killing myself" in result.stdout
    assert "not reached" not in result.stdout
    killed_at = float(re.search(r"killing myself at ([0-9.]+)", result.stdout).group(1))
    assert start < killed_at < end


def test_ctrl_c_on_one_rank_ends_the_job():
    # MPIEXEC_TIMEOUT would end a hung job after 120 s; the job must end long before that
    start = time.time()
    env_timeout = dict(os.environ, MPIEXEC_TIMEOUT="120")
    result = subprocess.run([mpiexec(), "-n", "2", sys.executable, str(WORKER), "interrupted"],
                            capture_output=True, text=True, timeout=300,
                            env={**env_timeout, "FASTPROP_NUM_THREADS": "1"})
    assert result.returncode != 0
    assert "rank 1: interrupting myself" in result.stdout
    assert "rank 1 of 2 interrupted; ending the job" in result.stderr
    assert "not reached" not in result.stdout
    assert time.time() - start < 100


def test_the_command_line_trains_data_parallel_with_the_same_output(tmp_path):
    from fastprop.cli import iris_path

    args = ["-m", "fastprop", "train", iris_path(), "--epochs", "20", "--block-rows", "16",
            "--patience", "50", "--quiet", "-o"]
    env = dict(os.environ, FASTPROP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, *args, str(tmp_path / "one.npz")], env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    two = subprocess.run([mpiexec(), "-n", "2", sys.executable, *args, str(tmp_path / "two.npz")],
                         env=env, capture_output=True, text=True, timeout=300, check=True)

    def report(out):
        return [re.sub(r" in [0-9.]+ s;", ";", line) for line in out.splitlines()
                if not line.startswith(("saved", "data-parallel"))]

    assert report(one.stdout) == report(two.stdout)
    assert "data-parallel: 2 processes" in two.stdout
    assert np.array_equal(fastprop.load(tmp_path / "one.npz").params,
                          fastprop.load(tmp_path / "two.npz").params)


def readme_example(which: int = 0) -> str:
    """The which-th python block of the README's distributed section."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("## Distributed training", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n")[1 + which].split("```", 1)[0]


@pytest.mark.parametrize("ranks", [1, 2])
def test_the_readme_example_runs_and_prints_what_it_says(tmp_path, ranks):
    code = readme_example()
    assert "print(np.array_equal(net.params, one.params))  # True" in code
    (tmp_path / "train_mpi.py").write_text(code, encoding="utf-8")
    command = [sys.executable, "train_mpi.py"]
    if ranks > 1:
        command = [mpiexec(), "-n", str(ranks), *command]
    env = dict(os.environ, FASTPROP_NUM_THREADS="1")
    out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    # every rank prints True; mpiexec forwards the ranks' lines as they come, so two of them
    # may arrive interleaved ("TrueTrue\n\n")
    assert out.count("True") == ranks and not out.replace("True", "").split(), out
    assert (tmp_path / "model.npz").exists()


# ---------------------------------------------------------------- fit_many and the searches


def test_fit_many_on_one_rank_is_fit_many():
    X, Y = data(80, 5, 2)
    kw = dict(epochs=3, lr=[1e-3, 1e-2, 1e200], batch_size=16, errors="ignore", seed=1,
              optimizer="sgd")
    nets = [fastprop.Network([5, h, 2], seed=h) for h in (3, 8, 4)]
    twins = [fastprop.Network([5, h, 2], seed=h) for h in (3, 8, 4)]
    result = distributed.fit_many(nets, X, Y, **kw)
    expected = fastprop.fit_many(twins, X, Y, **kw)
    assert result.stops == expected.stops == ["done", "done", "non_finite"]
    for net, twin, h, h1 in zip(nets, twins, result, expected):
        assert np.array_equal(net.params, twin.params)
        assert np.array_equal(np.asarray(h), np.asarray(h1))
    assert type(result.errors[2]) is FloatingPointError


def test_the_searches_on_one_rank_are_model_selections():
    pytest.importorskip("sklearn")
    from fastprop.sklearn import GridSearchCV, MLPRegressor

    X, Y = data(90, 4, 1)
    grid = {"hidden_layer_sizes": [(4,), (8,)]}
    base = MLPRegressor(max_iter=5, random_state=0, batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached
        one = GridSearchCV(base, grid, cv=3).fit(X, Y[:, 0])
        over = distributed.GridSearchCV(base, grid, cv=3).fit(X, Y[:, 0])
        scores = distributed.cross_val_score(base, X, Y[:, 0], cv=3)
        assert np.array_equal(scores, fastprop.sklearn.cross_val_score(base, X, Y[:, 0], cv=3))
    assert np.array_equal(one.cv_results_["mean_test_score"], over.cv_results_["mean_test_score"])


@pytest.mark.parametrize("ranks", [2, 3])
def test_fit_many_and_the_searches_over_ranks_are_one_process(ranks):
    """Bit-identity of distributed.fit_many and the searches with one process, failed
    networks, bad input and arguments that differ between ranks, in one mpiexec launch."""
    result = run_ranks(ranks, "many")
    assert_every_rank(result, ranks, "many OK")
    # every rank reports the same errors, naming the same ranks
    said: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        if "raised" in line or "errors [" in line:
            who, what = line.split(": ", 1)
            said.setdefault(who, []).append(what)
    assert len(said) == ranks and all(len(lines) == 9 for lines in said.values()), result.stdout
    assert all(lines == said["rank 0"] for lines in said.values()), result.stdout
    assert f"of {ranks}: KeyError" in result.stdout


def test_the_readme_example_of_many_networks_runs_on_two_ranks(tmp_path):
    pytest.importorskip("sklearn")
    code = readme_example(1)
    assert "distributed.fit_many(" in code and "distributed.GridSearchCV(" in code
    (tmp_path / "sweep_mpi.py").write_text(code, encoding="utf-8")
    env = dict(os.environ, FASTPROP_NUM_THREADS="1")
    out = subprocess.run([mpiexec(), "-n", "2", sys.executable, "sweep_mpi.py"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300,
                         check=True).stdout
    said = [line.split("#", 1)[1].strip() for line in code.splitlines()
            if line.startswith("print(") and "#" in line]
    assert len(said) == 4
    for line in said:  # on both ranks (mpiexec may interleave their lines)
        assert out.count(line) == 2, (line, out)
