"""Many networks in one call: fastprop.fit_many against fastprop's own loop of fits,
torch.func and JAX (E1, E2), and fastprop.sklearn.GridSearchCV against scikit-learn's
searches (E3).

    python benchmarks/many.py [--repeats 3] [--only E1,E2,E3] [--threads 2]

E1: 64 networks [64, 64, 64, 10] sigmoid with bias, batch 32, one epoch over 4,096 rows
(128 steps each). E2: 256 networks [8, 16, 1] tanh with bias, batch 16, one epoch over 1,024
rows (64 steps each). Both float32, plain SGD on fastprop's E (the sum of squares), each
network with its own initial weights (fastprop's, seed k) and its own learning rate, all on
the same minibatch sequence (no shuffling). Contenders, all timed in this run, medians of
``--repeats`` (each run from the same initial weights, reset outside the timing):

  fit_many     fastprop.fit_many(nets, X, Y, 1, lrs, optimizer="sgd", batch_size=B,
               shuffle=False)
  loop         for each network: net.fit(X, Y, 1, lr_k, optimizer="sgd", batch_size=B,
               shuffle=False)
  torch.func   vmap(grad(functional_call)) over the stacked parameters, one call per step
  jax          jit(vmap(train)), train a lax.scan over the steps (compile time apart)

Every contender's networks must end at the same losses (E on the whole data after
training): fit_many's are compared with the loop's bit for bit, the others' within a float32
tolerance. Network-steps per second = networks × steps / seconds (wall); the CPU seconds of the
process (all its threads) are printed beside: on a machine other work keeps busy, they say
what each contender costs better than the wall time does.

E3: GridSearchCV on scikit-learn's digits (X / 16): hidden_layer_sizes (32,), (64,), (128,)
× learning_rate_init 1e-3, 3e-3 × alpha 1e-4, 1e-3, 5 folds (60 fits, then the refit),
adam, 50 epochs each (n_iter_no_change above max_iter, so every fit runs all 50). Contenders:
scikit-learn's GridSearchCV(n_jobs=2) over scikit-learn's MLPClassifier and over fastprop's,
and fastprop.sklearn.GridSearchCV over fastprop's; the last two must give the same
cv_results_ scores. joblib's workers are started before the timing (the CPU time printed
is this process's: it leaves out joblib's worker processes).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import numpy as np

import fastprop

SETS = {
    "E1": dict(n=64, layers=(64, 64, 64, 10), activation="sigmoid", t=4096, batch=32, lr=2e-4),
    "E2": dict(n=256, layers=(8, 16, 1), activation="tanh", t=1024, batch=16, lr=2e-3),
}


def make_set(key: str):
    spec = SETS[key]
    rng = np.random.default_rng(0)
    layers = spec["layers"]
    X = rng.standard_normal((spec["t"], layers[0])).astype(np.float32)
    teacher = rng.standard_normal((layers[0], layers[-1]))
    if layers[-1] > 1:
        Y = np.eye(layers[-1], dtype=np.float32)[np.argmax(X @ teacher, axis=1)]
    else:
        Y = np.tanh(X @ teacher / np.sqrt(layers[0])).astype(np.float32)
    nets = [fastprop.Network(layers, spec["activation"], bias=True, dtype="float32", seed=k,
                             loss="sse")
            for k in range(spec["n"])]
    lrs = [spec["lr"] * (0.5 + k / spec["n"]) for k in range(spec["n"])]
    return spec, X, Y, nets, lrs


def timed(run, reset, repeats: int) -> tuple[float, float]:
    """Medians of the wall time and of the process's CPU time (all its threads)."""
    times, cpu = [], []
    for _ in range(repeats):
        reset()
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), statistics.median(cpu)


def losses_of(nets, flats, X, Y) -> np.ndarray:
    """E on the whole data of each network at the given flat parameters."""
    return np.array([net.loss_and_grad(X, Y, p)[0] for net, p in zip(nets, flats)])


def torch_contender(spec, X, Y, nets, lrs, threads: int):
    import torch
    from torch import nn
    from torch.func import functional_call, grad, stack_module_state, vmap

    torch.set_num_threads(threads)
    layers, act = spec["layers"], {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[spec["activation"]]
    modules = []
    for net in nets:
        parts = []
        for i, (W, b) in enumerate(zip(net.weights, net.biases)):
            linear = nn.Linear(layers[i], layers[i + 1])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(W.copy()))
                linear.bias.copy_(torch.from_numpy(b.copy()))
            parts += [linear, act()] if i < len(layers) - 2 else [linear]
        modules.append(nn.Sequential(*parts))
    initial, _ = stack_module_state(modules)
    initial = {k: v.detach().clone() for k, v in initial.items()}
    base = modules[0].to("meta")
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    lr = torch.tensor(lrs, dtype=torch.float32)
    B = spec["batch"]

    def E(params, Xb, Yb):
        return ((Yb - functional_call(base, params, (Xb,))) ** 2).sum()

    step_grad = vmap(grad(E), in_dims=(0, None, None))
    state = {}

    def reset():
        state["p"] = {k: v.clone() for k, v in initial.items()}

    def run():
        p = state["p"]
        for r0 in range(0, len(X), B):
            g = step_grad(p, Xt[r0:r0 + B], Yt[r0:r0 + B])
            p = {k: v - lr.view(-1, *([1] * (v.dim() - 1))) * g[k] for k, v in p.items()}
        state["p"] = p

    def flats():
        p = state["p"]
        out = []
        for k in range(len(nets)):
            parts = []
            for i in range(len(layers) - 1):
                parts += [p[f"{2 * i}.weight"][k].reshape(-1), p[f"{2 * i}.bias"][k]]
            out.append(torch.cat(parts).numpy())
        return out

    return run, reset, flats


def jax_contender(spec, X, Y, nets, lrs):
    import jax
    import jax.numpy as jnp

    sigma = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}[spec["activation"]]
    n_layers = len(spec["layers"]) - 1
    B = spec["batch"]
    steps = len(X) // B
    Xs = jnp.asarray(X.reshape(steps, B, -1))
    Ys = jnp.asarray(Y.reshape(steps, B, -1))
    initial = tuple((jnp.asarray(np.stack([net.weights[i] for net in nets])),
                     jnp.asarray(np.stack([net.biases[i] for net in nets])))
                    for i in range(n_layers))
    lr = jnp.asarray(lrs, dtype=jnp.float32)

    def forward(params, Xb):
        a = Xb
        for i, (W, b) in enumerate(params):
            z = a @ W.T + b
            a = sigma(z) if i < n_layers - 1 else z
        return a

    def train(params, lr_k, Xs, Ys):
        def step(params, batch):
            Xb, Yb = batch
            g = jax.grad(lambda p: jnp.sum((Yb - forward(p, Xb)) ** 2))(params)
            return jax.tree.map(lambda p, d: p - lr_k * d, params, g), None

        return jax.lax.scan(step, params, (Xs, Ys))[0]

    whole = jax.jit(jax.vmap(train, in_axes=(0, 0, None, None)))
    start = time.perf_counter()
    jax.block_until_ready(whole(initial, lr, Xs, Ys))
    compile_seconds = time.perf_counter() - start
    state = {}

    def reset():
        state["p"] = initial

    def run():
        state["p"] = jax.block_until_ready(whole(state["p"], lr, Xs, Ys))

    def flats():
        return [np.concatenate([np.concatenate([np.asarray(W[k]).reshape(-1), np.asarray(b[k])])
                                for W, b in state["p"]]) for k in range(len(nets))]

    return run, reset, flats, compile_seconds


def bench_set(key: str, repeats: int, threads: int) -> None:
    spec, X, Y, nets, lrs = make_set(key)
    n, B = spec["n"], spec["batch"]
    steps = len(X) // B
    initial = [net.params.copy() for net in nets]

    def reset():
        for net, p in zip(nets, initial):
            net.params = p

    def loop():
        for net, lr in zip(nets, lrs):
            net.fit(X, Y, 1, lr, optimizer="sgd", batch_size=B, shuffle=False)

    def many():
        fastprop.fit_many(nets, X, Y, 1, lrs, optimizer="sgd", batch_size=B, shuffle=False)

    print(f"\n{key}: {n} networks {list(spec['layers'])} {spec['activation']}, batch {B}, "
          f"{steps} steps each, float32")
    results = {}
    reference = None
    for name, run in (("loop", loop), ("fit_many", many)):
        results[name] = timed(run, reset, repeats)
        flats = [net.params.copy() for net in nets]
        if reference is None:
            reference = flats
        else:
            same = all(np.array_equal(a, b) for a, b in zip(reference, flats))
            print(f"  fit_many's parameters equal the loop's bit for bit: {same}")
            assert same
    E_ref = losses_of(nets, reference, X, Y)
    reset()  # the other contenders read their initial weights from the networks
    others, different = {}, []
    try:
        run, reset_t, flats_t = torch_contender(spec, X, Y, nets, lrs, threads)
        others["torch.func"] = (timed(run, reset_t, repeats), flats_t(), "")
    except ImportError as error:
        print(f"  torch.func skipped: {error}")
    try:
        run, reset_j, flats_j, compile_s = jax_contender(spec, X, Y, nets, lrs)
        others["jax"] = (timed(run, reset_j, repeats), flats_j(),
                         f" (+{compile_s:.2f} s compile, first call)")
    except ImportError as error:
        print(f"  jax skipped: {error}")
    for name, (seconds, flats, note) in others.items():
        results[name] = seconds
        E = losses_of(nets, flats, X, Y)
        rel = float(np.max(np.abs(E - E_ref) / np.abs(E_ref)))
        ok = rel < 1e-3
        print(f"  {name}: final losses within {rel:.1e} (relative) of fastprop's: "
              f"{'ok' if ok else 'DIFFERENT'}{note}")
        if not ok:
            different.append(name)
    base = results["fit_many"][0]
    print(f"  {'contender':<12} {'seconds':>9} {'net-steps/s':>12} {'fit_many is':>12} "
          f"{'CPU seconds':>12}")
    for name, (seconds, cpu) in results.items():
        print(f"  {name:<12} {seconds:9.4f} {n * steps / seconds:12,.0f} "
              f"{seconds / base:11.2f}x {cpu:12.4f}")
    if different:
        raise SystemExit(f"{key}: {', '.join(different)} ended at other losses than fastprop: "
                         "the ratios above compare different work")


def bench_e3(repeats: int) -> None:
    from joblib import Parallel, delayed
    from sklearn import model_selection as skms
    from sklearn import neural_network
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning

    import fastprop.sklearn as fs

    X, y = load_digits(return_X_y=True)
    X = X / 16
    grid = {"hidden_layer_sizes": [(32,), (64,), (128,)], "learning_rate_init": [1e-3, 3e-3],
            "alpha": [1e-4, 1e-3]}
    common = dict(solver="adam", max_iter=50, n_iter_no_change=51, random_state=0)
    contenders = {
        "sklearn GridSearchCV(sklearn MLP, n_jobs=2)":
            lambda: skms.GridSearchCV(neural_network.MLPClassifier(**common), grid, cv=5,
                                      n_jobs=2),
        "sklearn GridSearchCV(fastprop MLP, n_jobs=2)":
            lambda: skms.GridSearchCV(fs.MLPClassifier(**common), grid, cv=5, n_jobs=2),
        "fastprop.sklearn.GridSearchCV(fastprop MLP)":
            lambda: fs.GridSearchCV(fs.MLPClassifier(**common), grid, cv=5),
    }
    Parallel(n_jobs=2)(delayed(abs)(k) for k in range(4))  # start joblib's workers
    print("\nE3: GridSearchCV, digits, 12 candidates x 5 folds = 60 fits + refit, adam, "
          "50 epochs each")
    seconds, cpu, searches = {}, {}, {}
    for _ in range(repeats):
        for name, make in contenders.items():
            search = make()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                start, start_cpu = time.perf_counter(), time.process_time()
                search.fit(X, y)
                seconds.setdefault(name, []).append(time.perf_counter() - start)
                cpu.setdefault(name, []).append(time.process_time() - start_cpu)
            searches[name] = search
    names = list(contenders)
    a, b = searches[names[1]].cv_results_, searches[names[2]].cv_results_
    same = all(np.array_equal(a[k], b[k]) for k in a if k.startswith("split")
               and k.endswith("test_score"))
    print(f"  fastprop.sklearn.GridSearchCV's cv_results_ scores equal scikit-learn's "
          f"GridSearchCV's over the same estimator: {same}")
    assert same
    base = statistics.median(seconds[names[2]])
    for name in names:
        s = statistics.median(seconds[name])
        print(f"  {name:<46} {s:7.2f} s  best score {searches[name].best_score_:.4f}  "
              f"{s / base:6.2f}x fastprop's search  (this process's CPU "
              f"{statistics.median(cpu[name]):.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--e3-repeats", type=int, default=1)
    parser.add_argument("--only", default="E1,E2,E3")
    parser.add_argument("--threads", type=int, default=fastprop.get_num_threads())
    args = parser.parse_args()
    fastprop.set_num_threads(args.threads)
    print(f"fastprop {fastprop.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, fastprop threads {fastprop.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    for key in args.only.split(","):
        if key == "E3":
            bench_e3(args.e3_repeats)
        else:
            bench_set(key, args.repeats, args.threads)
    print(f"\nload average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
