"""DP-SGD (fastprop.optim.DPSGD): against a NumPy transcription of Opacus's formula, the
noise's scale and determinism, and one step against Opacus itself."""

from __future__ import annotations

import numpy as np
import pytest

import fastprop
from fastprop import optim, reference

from helpers import RTOL, assert_close, random_batch


def own_loss_gradients(net, X, Y, w=None):
    """g_s = ∂(w_s ℓ_s)/∂params: sample s's term of E without a mean loss's division."""
    G = net.per_sample_gradients(X, Y, sample_weight=w).astype(np.float64)
    if net.loss_name in ("sse",):
        return G
    return G * (len(X) if w is None else float(np.sum(w)))


def clip_between(net, X, Y, w=None):
    """A max_grad_norm that clips some samples and leaves others alone."""
    norms = np.linalg.norm(own_loss_gradients(net, X, Y, w), axis=1)
    return float(np.median(norms))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", ["sse", "mse", "cross_entropy"])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_step_matches_the_numpy_transcription(rng, dtype, loss, weighted):
    net = fastprop.Network([6, 9, 4], "tanh", bias=True, dtype=dtype, seed=7, loss=loss)
    X, Y = random_batch(rng, net, 10)
    if loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(4), size=10).astype(dtype)
    w = rng.uniform(0.2, 2.0, 10).astype(dtype) if weighted else None
    C = clip_between(net, X, Y, w)
    G = own_loss_gradients(net, X, Y, w)
    p0 = net.params.astype(np.float64)
    opt = optim.DPSGD(lr=0.05, max_grad_norm=C, noise_multiplier=0.0)
    if w is None:
        net.step(X, Y, optimizer=opt)
    else:  # full batch: one update
        net.fit(X, Y, sample_weight=w, epochs=1, optimizer=opt)
    expected = p0 - 0.05 * reference.dpsgd_gradient(G, C, np.zeros(net.n_params), len(X))
    assert_close(net.params, expected, RTOL[net.dtype] * 10, "p after one DP-SGD step")
    clipped = np.linalg.norm(G, axis=1) > C
    assert clipped.any() and not clipped.all()  # both branches of the clip were taken


def test_step_returns_the_loss_before_the_update(rng):
    net = fastprop.Network([4, 5, 2], "sigmoid", bias=True, seed=2, loss="mse")
    X, Y = random_batch(rng, net, 6)
    E_before = net.loss(X, Y)
    E = net.step(X, Y, optimizer=optim.DPSGD(lr=0.1, noise_multiplier=0.0))
    assert_close(E, E_before, RTOL[net.dtype], "E")


def test_minibatch_fit_with_momentum_matches_the_transcription(rng):
    net = fastprop.Network([5, 8, 3], "sigmoid", bias=True, seed=3, loss="mse")
    X, Y = random_batch(rng, net, 12)
    ref = fastprop.Network([5, 8, 3], "sigmoid", bias=True, seed=3, loss="mse")
    C, lr, batch = 0.05, 0.1, 4
    net.fit(X, Y, epochs=2, batch_size=batch, shuffle=False,
            optimizer=optim.DPSGD(lr=lr, max_grad_norm=C, noise_multiplier=0.0, momentum=0.9))
    p = [ref.params.copy()]
    sgd = reference.Optimizer("sgd", lr=lr, momentum=0.9)
    for _ in range(2):
        for r0 in range(0, 12, batch):
            rows = slice(r0, r0 + batch)
            ref.params = p[0]
            G = own_loss_gradients(ref, X[rows], Y[rows])
            g = reference.dpsgd_gradient(G, C, np.zeros(ref.n_params), batch)
            sgd.update(p, [g])
    assert_close(net.params, p[0], 1e-12, "p after 2 epochs of 3 minibatches")


def noise_of_one_step(seed, noise_multiplier=1.5, max_grad_norm=0.7, steps=1):
    """The noise added in the last of `steps` steps, read off a batch whose per-sample
    gradients are all zero (Y = z_n with sse), so that the update is −lr·noise/B."""
    net = fastprop.Network([64, 64, 64, 10], "sigmoid", bias=True, seed=1, loss="sse")
    X = np.random.default_rng(0).standard_normal((8, 64))
    Y = net.forward(X)
    opt = optim.DPSGD(lr=1.0, max_grad_norm=max_grad_norm, noise_multiplier=noise_multiplier,
                      seed=seed)
    for _ in range(steps):
        p0 = net.params.copy()
        net.step(X, Y, optimizer=opt)
    return (p0 - net.params) * len(X)


def test_noise_has_the_scale_of_noise_multiplier_times_max_grad_norm():
    noise = noise_of_one_step(seed=11)
    sigma = 1.5 * 0.7
    N = noise.size  # 8970 draws: the sample std is within 1/sqrt(2N) = 0.75% of σ (1 s.e.)
    assert abs(np.std(noise) / sigma - 1) < 0.04
    assert abs(np.mean(noise)) < 4 * sigma / np.sqrt(N)
    within = np.mean(np.abs(noise) < sigma)  # 0.6827 for a normal distribution, s.e. 0.5%
    assert abs(within - 0.6827) < 0.025
    within2 = np.mean(np.abs(noise) < 2 * sigma)  # 0.9545, s.e. 0.22%
    assert abs(within2 - 0.9545) < 0.012


def test_noise_is_deterministic_given_the_seed_and_new_every_step():
    first = noise_of_one_step(seed=5)
    assert np.array_equal(first, noise_of_one_step(seed=5))
    assert not np.allclose(first, noise_of_one_step(seed=6))
    second = noise_of_one_step(seed=5, steps=2)
    assert not np.allclose(first, second)
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.05


@pytest.mark.parametrize("kwargs, match", [
    ({"max_grad_norm": 0.0}, "max_grad_norm"),
    ({"max_grad_norm": float("nan")}, "max_grad_norm"),
    ({"noise_multiplier": -1.0}, "noise_multiplier"),
    ({"seed": -1}, "seed"),
])
def test_bad_hyperparameters_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.DPSGD(**kwargs)


def test_dpsgd_by_name_in_fit(rng):
    net = fastprop.Network([4, 6, 2], "tanh", seed=1, bias=False, loss="sse")
    X, Y = random_batch(rng, net, 16)
    E0 = net.loss(X, Y)
    net.fit(X, Y, epochs=30, batch_size=4, optimizer="dpsgd", lr=0.01, max_grad_norm=10.0,
            noise_multiplier=0.0)
    assert net.loss(X, Y) < E0


@pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning")
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_one_step_matches_opacus(rng, momentum):
    torch = pytest.importorskip("torch")
    pytest.importorskip("opacus")
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    net = fastprop.Network([6, 9, 9, 4], "sigmoid", bias=True, seed=8, loss="mse")
    X, Y = random_batch(rng, net, 16)
    C = clip_between(net, X, Y)
    model = GradSampleModule(net.to_torch().double())
    sgd = torch.optim.SGD(model.parameters(), lr=0.05, momentum=momentum)
    dp = DPOptimizer(sgd, noise_multiplier=0.0, max_grad_norm=C, expected_batch_size=len(X))
    opt = optim.DPSGD(lr=0.05, max_grad_norm=C, noise_multiplier=0.0, momentum=momentum)
    for _ in range(2):  # the second step takes momentum into account
        dp.zero_grad()
        torch.nn.functional.mse_loss(model(torch.tensor(X)), torch.tensor(Y)).backward()
        dp.step()
        net.step(X, Y, optimizer=opt)
    expected = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()
    assert_close(net.params, expected, 1e-12, "p after two steps vs Opacus")


def test_the_noise_is_new_in_every_fit_and_repeats_with_the_networks_seed():
    # With a zero loss gradient (Y = the network's own output) an update is noise alone.
    X = np.random.default_rng(0).standard_normal((32, 4))

    def noise(net, p0, Y, optimizer="dpsgd"):
        net.params = p0.copy()
        net.fit(X, Y, 1, optimizer=optimizer, batch_size=32)
        return net.params - p0

    net = fastprop.Network([4, 8, 1], "tanh", seed=0)
    Y, p0 = net.forward(X), net.params.copy()
    first, second = noise(net, p0, Y), noise(net, p0, Y)
    assert np.any(first != 0) and not np.array_equal(first, second)
    twin = fastprop.Network([4, 8, 1], "tanh", seed=0)
    assert np.array_equal(noise(twin, p0, Y), first)  # the seeded network repeats its fits
    unseeded = fastprop.Network([4, 8, 1], "tanh")
    assert not np.array_equal(noise(unseeded, p0, Y), first)
    fixed = [noise(net, p0, Y, fastprop.optim.DPSGD(seed=7)) for _ in range(2)]
    assert np.array_equal(*fixed)  # an explicit seed repeats the noise, as documented


def test_reset_draws_new_noise_for_an_object_without_a_seed():
    net = fastprop.Network([4, 8, 1], "tanh", seed=0)
    X = np.random.default_rng(0).standard_normal((16, 4))
    Y, p0 = net.forward(X), net.params.copy()  # a zero gradient: an update is noise alone
    opt = optim.DPSGD(lr=0.1)

    def one_step() -> np.ndarray:
        net.params = p0.copy()
        net.step(X, Y, optimizer=opt)
        return net.params - p0

    first = one_step()
    opt.reset()
    assert np.any(first != 0) and not np.array_equal(one_step(), first)
    seeded = optim.DPSGD(lr=0.1, seed=3)
    opt = seeded
    fixed = one_step()
    seeded.reset()
    assert np.array_equal(one_step(), fixed)  # a seed of its own keeps its noise, as documented


def test_a_resumed_fit_draws_the_interrupted_fits_noise(rng, tmp_path):
    X = rng.standard_normal((64, 4))
    Y = rng.standard_normal((64, 1))
    kwargs = dict(optimizer="dpsgd", lr=0.05, batch_size=16, noise_multiplier=1.0)
    whole = fastprop.Network([4, 8, 1], "tanh", seed=0)
    whole.fit(X, Y, 4, **kwargs)

    def stop_after_two(epoch: int, logs: dict) -> bool:
        return epoch < 1

    net = fastprop.Network([4, 8, 1], "tanh", seed=0)
    path = tmp_path / "run.npz"
    net.fit(X, Y, 4, checkpoint=path, callback=stop_after_two, **kwargs)
    assert len(net.history) == 2
    net.fit(X, Y, 4, checkpoint=path, **kwargs)  # the same object: its count of fits moved on
    assert np.array_equal(net.params, whole.params)


@pytest.mark.parametrize("case, error, match", [
    ("sparse", TypeError, "optimizer 'dpsgd' needs a dense X"),
    ("block_rows", ValueError, "block_rows must be None"),
])
def test_a_refused_dpsgd_fit_is_not_counted(rng, case, error, match):
    scipy_sparse = pytest.importorskip("scipy.sparse") if case == "sparse" else None
    X = rng.standard_normal((40, 3))
    Y = rng.standard_normal((40, 1))
    net = fastprop.Network([3, 4, 1], "tanh", seed=0)
    twin = fastprop.Network([3, 4, 1], "tanh", seed=0)
    arguments = ({"X": scipy_sparse.csr_matrix(X)} if case == "sparse"
                 else {"X": X, "block_rows": 4})
    with pytest.raises(error, match=match):
        net.fit(Y=Y, epochs=1, optimizer="dpsgd", **arguments)
    net.fit(X, Y, 2, batch_size=8)
    twin.fit(X, Y, 2, batch_size=8)
    assert np.array_equal(net.params, twin.params)  # the same shuffles: no fit was counted
