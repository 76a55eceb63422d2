"""The kernel sets: which one runs, and that the vector width never changes a bit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fastprop import _core

# Prints the raw bytes of a forward pass, a gradient and a short minibatch fit whose products
# are large enough for the blocked kernels (several k slices, edge tiles), in hex; tanh and
# sigmoid take the vector exp (and odd widths its padded tails), relu and leaky_relu the
# one-pass bias and σ, and every fit the vector update.
ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu")
PROGRAM = f"""
import numpy as np, fastprop
from fastprop import _core
rng = np.random.default_rng(0)
out = [_core.kernel_isa()]
for dtype, activation in [(d, f) for d in ("float32", "float64") for f in {ACTIVATIONS!r}]:
    net = fastprop.Network([300, 77, 130, 9], activation, bias=True, dtype=dtype, seed=3)
    X = rng.standard_normal((90, 300)).astype(dtype)
    Y = rng.standard_normal((90, 9)).astype(dtype)
    E, dW, db = net.gradient(X, Y)
    net.fit(X, Y, 2, lr=1e-4, batch_size=45, seed=0)
    parts = [net.forward(X), np.array([E]), *dW, *db, net.params]
    out.append("".join(np.ascontiguousarray(p).tobytes().hex() for p in parts))
print(" ".join(out))
"""


# The bench's untuned shapes (tests/test_threads.py UNTUNED): widths one past a multiple of the
# vector width, minibatches of 17, ten layers of 32, single-sample steps.
UNTUNED_PROGRAM = """
import numpy as np, fastprop
from fastprop import _core
out = [_core.kernel_isa()]
for layers, t, batch_size in [((65,) * 4, 256, None), ((129,) * 4, 256, None),
                              ((37,) * 4, 256, 17), ((32,) * 11, 256, None), ((64,) * 4, 40, 1)]:
    rng = np.random.default_rng(4)
    X = rng.standard_normal((t, layers[0])).astype("float32")
    Y = np.tanh(rng.standard_normal((t, layers[-1]))).astype("float32")
    net = fastprop.Network(layers, "relu", bias=True, dtype="float32", seed=0, loss="sse")
    E, dW, db = net.gradient(X, Y)
    net.fit(X, Y, 3, lr=1 / (1024 * layers[0]), optimizer="sgd", batch_size=batch_size,
            shuffle=False)
    parts = [np.array([E]), *dW, *db, net.params]
    out.append("".join(np.ascontiguousarray(p).tobytes().hex() for p in parts))
print(" ".join(out))
"""


# The activation passes alone over a sweep of z (every 2^12-th float32 bit pattern, float64
# values of every size, the special values; an odd count for the padded tail), σ and σ'.
ACTIVATION_PROGRAM = """
import hashlib
import numpy as np
from fastprop import _core
step = np.arange(0, 0x7f800000, 1 << 12, dtype=np.uint32).view(np.float32)
z32 = np.concatenate([step, -step, np.float32([0, -0.0, np.inf, -np.inf, np.nan, 0.625, 9.5])])
z64 = np.concatenate([np.linspace(-30, 30, 100_003), np.exp(np.linspace(-700, 6, 20_001)),
                      [0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 0.625, 400.0]])
out = [_core.kernel_isa()]
for z, run in ((z32, _core._activation_pass32), (z64, _core._activation_pass64)):
    for activation in ("tanh", "sigmoid"):
        for keep_prime in (False, True):
            a, prime = run(activation, z, keep_prime)
            out.append(hashlib.sha256(a.tobytes()).hexdigest())
            if keep_prime:
                out.append(hashlib.sha256(prime.tobytes()).hexdigest())
print(" ".join(out))
"""


def run_with(max_isa: str | None, program: str = PROGRAM) -> list[str]:
    env = dict(os.environ)
    env.pop("FASTPROP_MAX_ISA", None)
    if max_isa is not None:
        env["FASTPROP_MAX_ISA"] = max_isa
    out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True,
                         text=True, check=True)
    return out.stdout.split()


def test_isa_is_a_known_name():
    assert _core.kernel_isa() in ("avx512", "avx2", "portable")


def test_environment_caps_the_kernels():
    assert run_with("portable")[0] == "portable"
    capped = run_with("avx2")[0]
    assert capped in ("avx2", "portable")  # portable only where the CPU lacks AVX2 + FMA
    # an unknown name caps nothing: the child gets the kernels of a child without the
    # setting (this process may itself run capped)
    assert run_with("no-such-isa")[0] == run_with(None)[0]


@pytest.mark.skipif(_core.kernel_isa() != "avx512", reason="needs a CPU with AVX-512")
def test_avx512_and_avx2_kernels_give_the_same_bits():
    wide, narrow = run_with(None), run_with("avx2")
    assert (wide[0], narrow[0]) == ("avx512", "avx2")
    assert wide[1:] == narrow[1:]


@pytest.mark.skipif(_core.kernel_isa() != "avx512", reason="needs a CPU with AVX-512")
def test_avx512_and_avx2_kernels_give_the_same_bits_on_untuned_shapes():
    wide, narrow = run_with(None, UNTUNED_PROGRAM), run_with("avx2", UNTUNED_PROGRAM)
    assert (wide[0], narrow[0]) == ("avx512", "avx2")
    assert len(wide) == 6 and wide[1:] == narrow[1:]
    assert run_with("portable", UNTUNED_PROGRAM)[1:] != wide[1:]  # the check can fail


@pytest.mark.skipif(_core.kernel_isa() != "avx512", reason="needs a CPU with AVX-512")
def test_avx512_and_avx2_activation_passes_give_the_same_bits():
    wide, narrow = run_with(None, ACTIVATION_PROGRAM), run_with("avx2", ACTIVATION_PROGRAM)
    assert (wide[0], narrow[0]) == ("avx512", "avx2")
    assert wide[1:] == narrow[1:]
