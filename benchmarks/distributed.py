"""Data-parallel training on 2 ranks against one process: parallel efficiency, bytes per step.

    python benchmarks/distributed.py [--workloads W3,W4] [--repeats 3] [--block-rows 64,256]

Needs mpi4py and mpiexec (``pip install "fastprop[mpi]"``). For each workload of
``python -m fastprop bench`` (its network, data, batch, epochs and lr, float32), in the same
run, with one thread per process (FASTPROP_NUM_THREADS=1):

  plain       one process, ``Network.fit`` (each minibatch one pass)
  blocks B    one process, ``Network.fit(block_rows=B)`` (the tree of blocks, one rank's bits)
  2 ranks B   ``mpiexec -n 2``, ``fastprop.distributed.fit(block_rows=B)``
  torch, torch DDP 2   with ``--torch``: PyTorch on one process, and DistributedDataParallel
              over gloo on 2 ranks (each its half of every minibatch); "vs plain" is against
              fastprop's plain run, the efficiency against PyTorch's own one process

Time is the fit's own clock (``history.time[-1]``: the epochs, with the rows sent each epoch
and the tree exchanged each step, not the set-up); the best of ``--repeats`` runs. Parallel
efficiency = steps/s on 2 ranks / (2 × steps/s of plain). Bytes per step: what one rank
sends of the gradient tree, and of data rows (each epoch's rows to the rank whose blocks need
them), per step; exchange ms: the time per step in the all-gather, waiting for the other
rank included. CPU eff. = the CPU time of plain / the CPU time of both ranks (the whole fit
call, MPI's start-up excluded): the work the ranks add, spinning in MPI while waiting
included. On a machine shared with other jobs both are distorted: a rank that waits for one
that is not scheduled spins. The all-gather of one step's bytes alone (fastest of 30) is
printed after each workload.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np


def run_one(key: str, kind: str, block_rows: int) -> dict:
    """One timed fit in this process (under mpiexec for kind "ranks")."""
    import fastprop
    from fastprop import distributed
    from fastprop.bench.workloads import WORKLOADS, make_data

    w = WORKLOADS[key]
    X, Y = make_data(w, "float32")
    net = fastprop.Network(w.layers, w.activation, bias=w.bias, dtype="float32", seed=0)
    kw = dict(epochs=w.epochs, lr=w.lr, batch_size=w.batch, shuffle=True, seed=1,
              optimizer="sgd")
    if kind == "ranks":  # MPI started, and every rank here, before the clocks start
        distributed.world().Barrier()
    cpu = time.process_time()
    if kind == "plain":
        h = net.fit(X, Y, **kw)
        return {"seconds": float(h.time[-1]), "steps": w.steps, "cpu": time.process_time() - cpu}
    if kind == "blocks":
        h = net.fit(X, Y, block_rows=block_rows, **kw)
        return {"seconds": float(h.time[-1]), "steps": w.steps, "cpu": time.process_time() - cpu}
    comm = distributed.world()
    lo, hi = w.t * comm.rank // comm.size, w.t * (comm.rank + 1) // comm.size
    h = distributed.fit(net, X[lo:hi], Y[lo:hi], block_rows=block_rows, **kw)
    cpu = comm.allreduce(time.process_time() - cpu)  # of all ranks
    stats = dict(distributed.last_stats)
    return {"seconds": float(h.time[-1]), "steps": w.steps, "ranks": comm.size, "cpu": cpu,
            "tree_bytes_per_step": stats["tree_bytes"] / w.steps,
            "row_bytes_per_step": stats["row_bytes"] / w.steps,
            "exchange_ms_per_step": 1e3 * stats["exchange_seconds"] / max(1, stats["steps"]),
            "param_bytes": net.n_params * 4,
            "digest": str(hash(net.params.tobytes()))}


def run_torch(key: str, kind: str) -> dict:
    """The same network, rows, batch and steps in PyTorch on one thread per process: one
    process ("torch"), or DistributedDataParallel over gloo on the ranks of mpiexec
    ("torch-ddp", each rank its half of every minibatch): the issue's anchor, measured in the
    same run."""
    import torch
    from torch import nn

    from fastprop.bench.workloads import WORKLOADS, make_data

    torch.set_num_threads(1)
    w = WORKLOADS[key]
    X, Y = (torch.from_numpy(A) for A in make_data(w, "float32"))
    torch.manual_seed(0)
    parts: list[nn.Module] = []
    for i in range(len(w.layers) - 1):
        parts.append(nn.Linear(w.layers[i], w.layers[i + 1], bias=w.bias))
        if i < len(w.layers) - 2:
            parts.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[w.activation]())
    model: nn.Module = nn.Sequential(*parts)
    rank, size = 0, 1
    if kind == "torch-ddp":
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        from fastprop import distributed

        comm = distributed.world()
        rank, size = comm.rank, comm.size
        port = comm.bcast(29500 + os.getpid() % 1000 if rank == 0 else None, root=0)
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=size)
        model = DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=w.lr)
    B = w.batch // size  # this rank's rows of each global minibatch

    def step(r0: int) -> None:
        x = X[r0 + rank * B:r0 + (rank + 1) * B]
        y = Y[r0 + rank * B:r0 + (rank + 1) * B]
        opt.zero_grad()
        ((y - model(x)) ** 2).sum().backward()
        opt.step()

    starts = [k * w.batch % (len(X) - w.batch + 1) for k in range(w.steps)]
    step(0)  # warm-up (and DDP's first bucket set-up)
    if kind == "torch-ddp":
        comm.Barrier()
    start, cpu = time.perf_counter(), time.process_time()
    for r0 in starts:
        step(r0)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    if kind == "torch-ddp":
        seconds = comm.allreduce(seconds, op=__import__("mpi4py").MPI.MAX)
        cpu = comm.allreduce(cpu)
        torch.distributed.destroy_process_group()
    return {"seconds": seconds, "steps": w.steps, "cpu": cpu}


def run_exchange(n_bytes: int, repeats: int = 30) -> dict:
    """The all-gather of one step alone (both ranks at a barrier first): the fastest of
    `repeats`, which a loaded machine's scheduling delays least."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    send = np.ones(n_bytes, np.uint8)
    recv = np.empty(n_bytes * comm.size, np.uint8)
    counts = [n_bytes] * comm.size
    displs = [n_bytes * q for q in range(comm.size)]
    best = float("inf")
    for _ in range(repeats):
        comm.Barrier()
        start = time.perf_counter()
        comm.Allgatherv([send, MPI.BYTE], [recv, (counts, displs), MPI.BYTE])
        best = min(best, time.perf_counter() - start)
    return {"bytes": n_bytes, "seconds": comm.allreduce(best, op=MPI.MAX)}


def launch(args: list[str], ranks: int = 0) -> dict:
    env = dict(os.environ, FASTPROP_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--worker", *args]
    if ranks:
        mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                               + os.environ.get("PATH", ""))
        cmd = [mpiexec, "-n", str(ranks), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env, check=True)
    results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return results[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", default="W3,W4")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--block-rows", default="64,256")
    parser.add_argument("--torch", action="store_true",
                        help="also PyTorch on one process and DistributedDataParallel (gloo) "
                             "on 2 ranks, the same network, rows and steps")
    parser.add_argument("--worker", nargs=3, metavar=("KEY", "KIND", "BLOCK_ROWS"))
    args = parser.parse_args()
    if args.worker:
        key, kind, block = args.worker
        if kind == "exchange":
            result = run_exchange(int(block))
        elif kind.startswith("torch"):
            result = run_torch(key, kind)
        else:
            result = run_one(key, kind, int(block))
        from fastprop import distributed

        if kind not in ("ranks", "exchange", "torch-ddp") or distributed.world().rank == 0:
            print(json.dumps(result), flush=True)
        return
    print(f"load average: {os.getloadavg()}", flush=True)
    for key in args.workloads.split(","):
        best = {}
        for _ in range(args.repeats):
            runs = {"plain": launch([key, "plain", "0"])}
            for B in args.block_rows.split(","):
                runs[f"blocks {B}"] = launch([key, "blocks", B])
                runs[f"2 ranks {B}"] = launch([key, "ranks", B], ranks=2)
            if args.torch:
                runs["torch"] = launch([key, "torch", "0"])
                runs["torch DDP 2"] = launch([key, "torch-ddp", "0"], ranks=2)
            for name, r in runs.items():
                if name not in best or r["seconds"] < best[name]["seconds"]:
                    best[name] = r
        plain = best["plain"]["steps"] / best["plain"]["seconds"]
        plain_cpu = best["plain"]["cpu"]
        print(f"\n{key}: {best['plain']['steps']} steps, float32, 1 thread per process")
        print(f"{'run':<14}{'steps/s':>10}{'vs plain':>10}{'efficiency':>12}"
              f"{'tree B/step':>14}{'rows B/step':>14}{'exchange ms':>13}{'CPU eff.':>10}")
        for name, r in best.items():
            rate = r["steps"] / r["seconds"]
            base, base_cpu = plain, plain_cpu
            if name.startswith("torch"):  # against PyTorch's own one process
                base = best["torch"]["steps"] / best["torch"]["seconds"]
                base_cpu = best["torch"]["cpu"]
            two = name.startswith(("2 ranks", "torch DDP"))
            eff = rate / (2 * base) if two else float("nan")
            tree = r.get("tree_bytes_per_step", 0)
            rows = r.get("row_bytes_per_step", 0)
            exchange = r.get("exchange_ms_per_step", float("nan"))
            cpu_eff = base_cpu / r["cpu"] if two else float("nan")
            print(f"{name:<14}{rate:>10.2f}{rate / plain:>10.2f}{eff:>12.0%}"
                  f"{tree:>14,.0f}{rows:>14,.0f}{exchange:>13.2f}{cpu_eff:>10.0%}")
        param_bytes = best[next(k for k in best if k.startswith("2 ranks"))]["param_bytes"]
        x = launch([key, "exchange", str(param_bytes + 16)], ranks=2)
        print(f"(parameters: {param_bytes:,} bytes; the all-gather of one step alone, fastest "
              f"of 30: {1e3 * x['seconds']:.2f} ms, {2 * x['bytes'] / x['seconds'] / 1e9:.2f} "
              f"GB/s moved)")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
