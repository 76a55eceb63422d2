"""Per-sample gradients and DP-SGD: fastprop against torch.func, JAX and Opacus, same run.

    python benchmarks/per_sample.py [--repeats 5] [--dp-samples 4096] [--memory-samples 4096]

On W2's network ([64, 64, 64, 10], sigmoid, bias, float32, E summed over the batch):

1. per-sample gradients, calls/s at batches of 32 and 256: ``net.per_sample_gradients``
   (a (t, n_params) array in the parameter layout) against ``torch.func.vmap(grad)`` and
   JAX ``jit(vmap(grad))`` (each returning its own pytree of per-sample gradients, which is
   not flattened for them). The results are compared before timing. torch runs on 1 or 2
   intra-op threads, whichever is faster at the time (printed), JAX with its defaults,
   fastprop with its own.
2. per-sample gradient norms at the same batches (``net.per_sample_gradient_norms``), and the
   peak memory of the norms of a large batch against materialising the gradients (fastprop,
   torch.func, Opacus's GradSampleModule), each in a fresh process (the peak resident
   memory, VmHWM, after minus before).
3. a DP-SGD epoch (minibatches of 32, max_grad_norm 1, noise_multiplier 1): ``net.fit`` with
   ``optim.DPSGD`` against Opacus's ``GradSampleModule`` + ``DPOptimizer`` around
   ``torch.optim.SGD`` (loss_reduction "mean" of the per-sample sums, so that both clip the
   gradients of ||y_s − z_n,s||² and divide by the batch).

Each figure is the median of --repeats timed runs after a warm-up; the ratios are fastprop's
speed over each peer's, measured in the same run. A missing peer is reported and skipped.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

import fastprop
from fastprop import optim

LAYERS = (64, 64, 64, 10)
DTYPE = "float32"


def data(t, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((t, LAYERS[0])).astype(DTYPE)
    Y = np.eye(LAYERS[-1], dtype=DTYPE)[rng.integers(0, LAYERS[-1], t)]
    return X, Y


def network():
    return fastprop.Network(list(LAYERS), "sigmoid", bias=True, dtype=DTYPE, seed=0)


def calls_per_second(fn, repeats, min_seconds=0.2):
    """Median over `repeats` of calls/s, each timing enough calls to last min_seconds."""
    return interleaved({"fn": fn}, repeats, min_seconds)["fn"]


def interleaved(fns, repeats, min_seconds=0.2):
    """Calls/s of each function by name: the median over `repeats` rounds, each round timing
    every function in turn for about min_seconds, so that a change in the machine's load
    falls on all of them alike."""
    calls = {}
    for name, fn in fns.items():  # warm-up, and how many calls last min_seconds
        fn()
        start, k = time.perf_counter(), 0
        while time.perf_counter() - start < min_seconds / 4:
            fn()
            k += 1
        calls[name] = max(1, round(k * min_seconds / (time.perf_counter() - start)))
    rates = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            rates[name].append(calls[name] / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def flat_from(per_layer, t):
    """Per-sample (W_0, b_0, W_1, b_1, ...) arrays as one (t, n_params) array."""
    return np.concatenate([np.asarray(g).reshape(t, -1) for g in per_layer], axis=1)


def torch_func_peer(net, X, Y):
    import torch
    from torch.func import functional_call, grad, vmap

    module = net.to_torch()
    params = {k: v.detach() for k, v in module.named_parameters()}

    def sample_loss(p, x, y):
        z = functional_call(module, p, (x[None],))[0]
        return ((y - z) ** 2).sum()

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    run = lambda: per_sample(params, x, y)  # noqa: E731
    return run, lambda: flat_from([v.numpy() for v in run().values()], len(X))


def jax_peer(net, X, Y):
    import jax
    import jax.numpy as jnp

    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in zip(net.weights, net.biases)]

    def sample_loss(p, x, y):
        a = x
        for i, (W, b) in enumerate(p):
            z = W @ a + b
            a = jax.nn.sigmoid(z) if i + 1 < len(p) else z
        return jnp.sum((y - a) ** 2)

    per_sample = jax.jit(jax.vmap(jax.grad(sample_loss), in_axes=(None, 0, 0)))
    x, y = jnp.asarray(X), jnp.asarray(Y)
    run = lambda: jax.block_until_ready(per_sample(params, x, y))  # noqa: E731

    def result():
        grads = run()
        return flat_from([g for pair in grads for g in pair], len(X))

    return run, result


def best_torch_threads():
    """torch's intra-op threads, 1 or 2, whichever runs torch.func's per-sample gradients of a
    batch of 32 faster here (on a loaded machine, 2 threads can be many times slower)."""
    import torch

    net = network()
    X, Y = data(32)
    run, _ = torch_func_peer(net, X, Y)
    rates = {}
    for k in (1, 2):
        torch.set_num_threads(k)
        rates[k] = calls_per_second(run, 3, min_seconds=0.1)
    best = max(rates, key=rates.get)
    torch.set_num_threads(best)
    print(f"  torch threads: {best} ({', '.join(f'{k}: {r:,.0f}/s' for k, r in rates.items())})")
    return best


def bench_per_sample(repeats):
    print("== per-sample gradients of W2's network, float32 (calls/s, median of "
          f"{repeats} interleaved rounds) ==")
    rows = []
    try:
        best_torch_threads()
    except ImportError:
        pass
    for t in (32, 256):
        net = network()
        X, Y = data(t)
        ours = net.per_sample_gradients(X, Y)
        fns = {"fastprop": lambda: net.per_sample_gradients(X, Y),
               "fastprop norms": lambda: net.per_sample_gradient_norms(X, Y)}
        for name, make in (("torch.func", torch_func_peer), ("jax", jax_peer)):
            try:
                run, result = make(net, X, Y)
            except ImportError as error:
                print(f"  {name}: skipped ({error})")
                continue
            diff = np.max(np.abs(result() - ours)) / np.max(np.abs(ours))
            assert diff < 1e-4, f"{name} disagrees with fastprop by {diff:.2e} (relative)"
            fns[name] = run
        line = {"batch": t, **interleaved(fns, repeats)}
        rows.append(line)
        fp = line["fastprop"]
        peers = [k for k in ("torch.func", "jax") if k in line]
        ratios = "  ".join(f"{fp / line[k]:.1f}x {k}" for k in peers)
        print(f"  batch {t:3d}: fastprop {fp:9,.0f}   norms only {line['fastprop norms']:9,.0f}"
              "   " + "   ".join(f"{k} {line[k]:9,.0f}" for k in peers) + f"   ->  {ratios}")
    return rows


def dp_epoch_fastprop(X, Y, batch):
    net = network()
    opt = optim.DPSGD(lr=1e-3, max_grad_norm=1.0, noise_multiplier=1.0, seed=0)
    start = time.perf_counter()
    net.fit(X, Y, epochs=1, batch_size=batch, shuffle=False, optimizer=opt)
    return time.perf_counter() - start


def dp_epoch_opacus(X, Y, batch):
    import torch
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    model = GradSampleModule(network().to_torch())
    dp = DPOptimizer(torch.optim.SGD(model.parameters(), lr=1e-3), noise_multiplier=1.0,
                     max_grad_norm=1.0, expected_batch_size=batch)
    x, y = torch.from_numpy(X), torch.from_numpy(Y)
    start = time.perf_counter()
    for r0 in range(0, len(X), batch):
        dp.zero_grad()
        z = model(x[r0:r0 + batch])
        # the mean over samples of ||y_s − z_s||²: Opacus's per-sample gradients are then
        # those of ||y_s − z_s||², and the step divides by the batch, as fastprop's DPSGD
        (((y[r0:r0 + batch] - z) ** 2).sum(dim=1)).mean().backward()
        dp.step()
    return time.perf_counter() - start


def bench_dpsgd(repeats, t, batch=32):
    print(f"== DP-SGD epoch of W2's network: {t} samples, minibatches of {batch}, float32 "
          f"(steps/s, median of {repeats}) ==")
    X, Y = data(t, seed=1)
    steps = t // batch
    fp = statistics.median(steps / dp_epoch_fastprop(X, Y, batch) for _ in range(repeats))
    try:
        import opacus  # noqa: F401
    except ImportError as error:
        print(f"  fastprop {fp:,.0f} steps/s; Opacus skipped ({error})")
        return {"fastprop": fp}
    dp_epoch_opacus(X[:batch * 4], Y[:batch * 4], batch)  # warm-up
    op = statistics.median(steps / dp_epoch_opacus(X, Y, batch) for _ in range(repeats))
    print(f"  fastprop {fp:9,.0f} steps/s   Opacus {op:9,.0f} steps/s   ->  {fp / op:.1f}x Opacus")
    return {"fastprop": fp, "opacus": op}


MEMORY_PROBE = """
import sys
sys.path[:0] = {path!r}
import per_sample as b

def peak_kib():  # VmHWM: this process's peak resident memory (ru_maxrss counts the parent's)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

net = b.network()
X, Y = b.data({t})
net.per_sample_gradient_norms(X[:8], Y[:8])
before = peak_kib()
{call}
print((peak_kib() - before) / 1024)
"""


def bench_memory(t):
    print(f"== peak memory added by one call on {t} samples (MiB, fresh process each) ==")
    n_params = network().n_params
    calls = {
        "fastprop norms": "net.per_sample_gradient_norms(X, Y)",
        "fastprop gradients": "net.per_sample_gradients(X, Y)",
        "torch.func gradients": "run, _ = b.torch_func_peer(net, X, Y); run()",
        "Opacus grad_sample": "import torch; from opacus import GradSampleModule; "
                              "m = GradSampleModule(net.to_torch()); "
                              "(((torch.from_numpy(Y) - m(torch.from_numpy(X))) ** 2).sum()"
                              ").backward()",
    }
    out = {}
    for name, call in calls.items():
        code = MEMORY_PROBE.format(path=[os.path.dirname(os.path.abspath(__file__))], t=t,
                                   call=call)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"  {name}: failed ({done.stderr.strip().splitlines()[-1]})")
            continue
        out[name] = float(done.stdout.strip().splitlines()[-1])
        print(f"  {name:22s} {out[name]:8.1f}")
    print(f"  (t·n_params·4 bytes = {t * n_params * 4 / 2**20:.1f} MiB; "
          f"t·4 bytes = {t * 4 / 2**10:.1f} KiB)")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dp-samples", type=int, default=4096)
    parser.add_argument("--memory-samples", type=int, default=4096)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(f"fastprop {fastprop.__version__}, {platform.processor() or platform.machine()}, "
          f"{fastprop.get_num_threads()} threads, load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f}")
    bench_per_sample(args.repeats)
    bench_dpsgd(args.repeats, args.dp_samples)
    bench_memory(args.memory_samples)


if __name__ == "__main__":
    main()
