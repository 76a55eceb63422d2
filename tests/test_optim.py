"""The optimisers of fastprop.optim: core against the reference and against torch.optim.

Checked, for every optimiser ("sgd", "momentum", "nesterov", "adam", "adamw", "rprop"), with
and without weight decay:

- 20 ``net.step(X, Y, optimizer=obj)`` calls follow ``reference.step(..., optimizer=...)``
  step for step (E before each step and every parameter after it), in both dtypes;
- a minibatch ``net.fit(..., optimizer=name)`` follows ``reference.fit(..., optimizer=...)``;
- in float64, the parameters follow torch.optim's trajectory (SGD, SGD with momentum and
  Nesterov, Adam, AdamW, Rprop) after every one of 20 steps on the model's E;
- an optimiser object carries its state across fit calls (3 + 2 epochs == 5 epochs), a
  name does not;
- bad hyperparameters are refused with errors naming what is valid.

The reference optimisers are built from the names' documented presets here, independently
of fastprop.optim, so that a wrong preset (μ = 0.9, nesterov) fails too.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastprop
from fastprop import optim, reference

from helpers import DTYPES, assert_close, random_batch, ref_params

NAMES = ("sgd", "momentum", "nesterov", "adam", "adamw", "rprop")
WEIGHT_DECAYS = (0.0, 0.1)
LR = 0.01
STEPS = 20

# The documented presets of each name (fastprop.optim's table), as reference.Optimizer reads them.
REFERENCE_PRESETS = {
    "sgd": {"method": "sgd"},
    "momentum": {"method": "sgd", "momentum": 0.9},
    "nesterov": {"method": "sgd", "momentum": 0.9, "nesterov": True},
    "adam": {"method": "adam"},
    "adamw": {"method": "adamw"},
    "rprop": {"method": "rprop"},
}

# Core and reference evaluate the same update formulas in a different order (batched
# products, fused loops), so they agree up to rounding, measured against the largest entry.
#   float64: one step agrees to ~3e-16; 20 steps compounding stay far below 1e-10 (measured
#            3.6e-16 at worst).
#   float32: eps = 6e-8; Adam divides by √v, so rounding in a small gradient becomes rounding
#            in a full-sized update; measured 1.7e-6 after 20 steps, 1e-4 leaves a margin of
#            ~60 (the helpers' float32 tolerance).
TRAJECTORY_RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}
# torch evaluates the same float64 formulas with its own kernels (and autograd for the
# gradient): rounding only, compounded over 20 steps (measured 8e-16 at worst); 1e-10 of the
# largest parameter still catches any difference of formula (a dropped weight decay, a
# swapped Nesterov or AdamW, all checked to fail).
TORCH_RTOL = 1e-10


# ---------------------------------------------------------------------- helpers
def make_net(dtype="float64", seed=3, layers=(4, 6, 3)):
    """A tanh network with non-zero biases, so that b_i takes part in every comparison."""
    net = fastprop.Network(list(layers), "tanh", bias=True, dtype=dtype, seed=seed, loss="sse")
    bias_rng = np.random.default_rng(seed)
    for b in net.biases:
        b[...] = bias_rng.uniform(-0.5, 0.5, b.shape)
    return net


def reference_optimizer(name, weight_decay, lr=LR):
    return reference.Optimizer(lr=lr, weight_decay=weight_decay, **REFERENCE_PRESETS[name])


def flat_params(W, b):
    """The reference's lists in the core's layout: W_0, b_0, W_1, b_1, ..."""
    parts = []
    for i in range(len(W)):
        parts.append(W[i].ravel())
        if b:
            parts.append(b[i])
    return np.concatenate(parts)


def assert_params_moved(net, start, what):
    """A trajectory comparison must not pass because nothing happened."""
    moved = np.max(np.abs(net.params.astype(np.float64) - start))
    assert moved > 0.05, f"{what}: the parameters barely moved ({moved:.3g})"


def wd_id(weight_decay):
    return f"wd={weight_decay}"


# ---------------------------------------------------------------------- (a) core vs reference
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", WEIGHT_DECAYS, ids=wd_id)
@pytest.mark.parametrize("name", NAMES)
def test_steps_with_optimizer_object_match_reference(rng, name, weight_decay, dtype):
    net = make_net(dtype)
    X, Y = random_batch(rng, net, 10)
    W, b = ref_params(net)
    start = net.params.astype(np.float64)
    opt = optim.make(name, LR, weight_decay=weight_decay)
    ref_opt = reference_optimizer(name, weight_decay)
    rtol = TRAJECTORY_RTOL[net.dtype]
    for k in range(STEPS):
        E = net.step(X, Y, optimizer=opt)
        E_ref = reference.step(W, b, net.activations, X, Y, LR, optimizer=ref_opt)
        assert_close(E, E_ref, rtol, f"E before step {k}")
        assert_close(net.params, flat_params(W, b), rtol, f"params after step {k}")
    assert opt.steps == STEPS
    assert_params_moved(net, start, name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", WEIGHT_DECAYS, ids=wd_id)
@pytest.mark.parametrize("name", NAMES)
def test_minibatch_fit_by_name_matches_reference(rng, name, weight_decay, dtype):
    # 10 rows in batches of 4: two full minibatches and one of 2, three updates an epoch.
    net = make_net(dtype)
    X, Y = random_batch(rng, net, 10)
    W, b = ref_params(net)
    start = net.params.astype(np.float64)
    history = net.fit(X, Y, epochs=8, lr=LR, optimizer=name, weight_decay=weight_decay,
                      batch_size=4, shuffle=False)
    history_ref = reference.fit(W, b, net.activations, X, Y, epochs=8, lr=LR, batch_size=4,
                                shuffle=False, optimizer=reference_optimizer(name, weight_decay))
    rtol = TRAJECTORY_RTOL[net.dtype]
    assert_close(history, history_ref, rtol, "E per epoch")
    assert_close(net.params, flat_params(W, b), rtol, "params after fit")
    assert_params_moved(net, start, name)


@pytest.mark.parametrize("name", NAMES)
def test_shuffled_minibatch_fit_with_mean_loss_matches_reference(rng, name):
    # The permutation (the core's generator) and the row-weighted epoch loss of a mean loss
    # take part too; the sum-loss, unshuffled case is the test above.
    net = fastprop.Network([3, 5, 2], "sigmoid", bias=True, seed=8, loss="mse")
    X, Y = random_batch(rng, net, 11)
    W, b = ref_params(net)
    history = net.fit(X, Y, epochs=6, lr=0.05, optimizer=name, weight_decay=0.0, batch_size=3,
                      shuffle=True, seed=4)
    history_ref = reference.fit(W, b, net.activations, X, Y, epochs=6, lr=0.05, loss="mse",
                                batch_size=3, shuffle=True, seed=4,
                                optimizer=reference_optimizer(name, 0.0, lr=0.05))
    assert_close(history, history_ref, TRAJECTORY_RTOL[net.dtype], "E per epoch")
    assert_close(net.params, flat_params(W, b), TRAJECTORY_RTOL[net.dtype], "params after fit")


@pytest.mark.parametrize("name", NAMES)
def test_step_lr_overrides_the_optimizers_lr(rng, name):
    net, twin = make_net(), make_net()
    X, Y = random_batch(rng, net, 6)
    slow, fast = optim.make(name, 1e-4), optim.make(name, 0.02)
    for _ in range(3):
        net.step(X, Y, 0.02, optimizer=slow)
        twin.step(X, Y, optimizer=fast)
    np.testing.assert_array_equal(net.params, twin.params)
    assert slow.lr == 1e-4  # the override is for the call, not stored


# ---------------------------------------------------------------------- (b) core vs torch.optim
def torch_model(net):
    """nn.Sequential of Linear and Tanh in float64 with the network's W_i and b_i."""
    torch = pytest.importorskip("torch")
    layers = []
    for i in range(net.n):
        linear = torch.nn.Linear(net.layers[i], net.layers[i + 1], bias=net.bias,
                                 dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(net.weights[i].copy()))  # (l_out, l_in) as W_i
            if net.bias:
                linear.bias.copy_(torch.from_numpy(net.biases[i].copy()))
        layers.append(linear)
        if i + 1 < net.n:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def torch_optimizer(name, params, weight_decay):
    torch = pytest.importorskip("torch")
    if name == "sgd":
        return torch.optim.SGD(params, lr=LR, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(params, lr=LR, momentum=0.9, weight_decay=weight_decay)
    if name == "nesterov":
        return torch.optim.SGD(params, lr=LR, momentum=0.9, nesterov=True,
                               weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=LR, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=LR, weight_decay=weight_decay)
    if name == "rprop":  # torch's Rprop has no weight_decay; it is added to the loss below
        return torch.optim.Rprop(params, lr=LR)
    raise AssertionError(name)


def torch_flat_params(model):
    """The torch parameters in the core's layout (Linear i: weight row-major, then bias)."""
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


@pytest.mark.parametrize("weight_decay", WEIGHT_DECAYS, ids=wd_id)
@pytest.mark.parametrize("name", NAMES)
def test_trajectory_matches_torch_optim(rng, name, weight_decay):
    torch = pytest.importorskip("torch")
    net = make_net("float64", layers=(4, 7, 5, 3))
    X, Y = random_batch(rng, net, 12)
    model = torch_model(net)
    np.testing.assert_array_equal(torch_flat_params(model), net.params)  # same layout
    opt_torch = torch_optimizer(name, model.parameters(), weight_decay)
    opt = optim.make(name, LR, weight_decay=weight_decay)
    X_t, Y_t = torch.from_numpy(X), torch.from_numpy(Y)
    start = net.params.copy()
    for k in range(STEPS):
        opt_torch.zero_grad()
        E_torch = ((Y_t - model(X_t)) ** 2).sum()  # the model's E
        if name == "rprop" and weight_decay:  # fastprop's L2: weight_decay·p added to ∂E/∂p
            E_torch = E_torch + 0.5 * weight_decay * sum((p**2).sum() for p in model.parameters())
        E_torch.backward()
        opt_torch.step()
        E = net.step(X, Y, optimizer=opt)
        if not (name == "rprop" and weight_decay):
            assert_close(E, E_torch.item(), TORCH_RTOL, f"E before step {k}")
        assert_close(net.params, torch_flat_params(model), TORCH_RTOL, f"params after step {k}")
    assert_params_moved(net, start, name)


@pytest.mark.parametrize("name, torch_name", [("sgd", "SGD"), ("adam", "Adam"),
                                              ("adamw", "AdamW"), ("rprop", "Rprop")])
def test_default_hyperparameters_are_torchs(name, torch_name):
    torch = pytest.importorskip("torch")
    defaults = getattr(torch.optim, torch_name)([torch.zeros(1)]).defaults
    opt = optim.make(name)
    keys = [key for key in ("lr", "betas", "eps", "weight_decay", "etas", "step_sizes",
                            "momentum", "nesterov")
            if key in defaults and hasattr(opt, key)]
    assert len(keys) >= 3
    for key in keys:
        np.testing.assert_array_equal(getattr(opt, key), defaults[key], err_msg=key)


@pytest.mark.parametrize("name, lr, momentum, nesterov", [("sgd", 1e-3, 0.0, False),
                                                          ("momentum", 1e-3, 0.9, False),
                                                          ("nesterov", 1e-3, 0.9, True)])
def test_sgd_presets_are_the_documented_ones(name, lr, momentum, nesterov):
    opt = optim.make(name)
    assert (type(opt), opt.lr, opt.momentum, opt.nesterov) == (optim.SGD, lr, momentum, nesterov)


# ---------------------------------------------------------------------- (c) state across fit calls
@pytest.mark.parametrize("name", NAMES)
def test_optimizer_object_continues_across_fit_calls(rng, name):
    net, twin = make_net(), make_net()
    X, Y = random_batch(rng, net, 10)
    opt = optim.make(name, LR)
    first = net.fit(X, Y, epochs=3, optimizer=opt, batch_size=4, shuffle=False)
    second = net.fit(X, Y, epochs=2, optimizer=opt, batch_size=4, shuffle=False)
    opt_twin = optim.make(name, LR)
    whole = twin.fit(X, Y, epochs=5, optimizer=opt_twin, batch_size=4, shuffle=False)
    np.testing.assert_array_equal(net.params, twin.params)
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)
    assert opt.steps == opt_twin.steps == 5 * 3  # three minibatches an epoch
    for key in opt_twin.state:
        np.testing.assert_array_equal(opt.state[key], opt_twin.state[key], err_msg=key)


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam", "adamw", "rprop"])
def test_optimizer_by_name_starts_fresh_every_fit_call(rng, name):
    # Optimisers with state: by name, the second call starts from zero momentum / moments /
    # step sizes, so 3 + 2 epochs differ from 5 (plain sgd has no state to lose).
    net, twin = make_net(), make_net()
    X, Y = random_batch(rng, net, 10)
    net.fit(X, Y, epochs=3, lr=LR, optimizer=name)
    net.fit(X, Y, epochs=2, lr=LR, optimizer=name)
    twin.fit(X, Y, epochs=5, lr=LR, optimizer=name)
    assert np.max(np.abs(net.params - twin.params)) > 1e-6


def test_optimizer_object_mixes_step_and_fit(rng):
    # step and fit share the object's state and step count: 2 steps + a 3-epoch full-batch
    # fit equal 5 steps.
    net, twin = make_net(), make_net()
    X, Y = random_batch(rng, net, 8)
    opt, opt_twin = optim.Adam(lr=LR), optim.Adam(lr=LR)
    for _ in range(2):
        net.step(X, Y, optimizer=opt)
    net.fit(X, Y, epochs=3, optimizer=opt)
    for _ in range(5):
        twin.step(X, Y, optimizer=opt_twin)
    np.testing.assert_array_equal(net.params, twin.params)
    assert opt.steps == 5


def test_steps_are_live_in_a_callback(rng):
    """A callback reads the count of the updates made so far, not the count before the fit;
    setting it (as a resumed fit does) reaches the state Adam's bias correction reads."""
    net, twin = make_net(), make_net()
    X, Y = random_batch(rng, net, 12)
    opt, seen = optim.Adam(lr=LR), []
    net.fit(X, Y, epochs=3, batch_size=4, shuffle=False, optimizer=opt,
            callback=lambda epoch, logs: seen.append(opt.steps))
    assert seen == [3, 6, 9] and opt.steps == 9
    # The count alone set back to 0 on a twin state: the next update's bias correction is
    # that of a first step, so the two diverge.
    other = optim.Adam(lr=LR)
    twin.fit(X, Y, epochs=3, batch_size=4, shuffle=False, optimizer=other)
    other.steps = 0
    assert other.steps == 0
    twin.step(X, Y, optimizer=other)
    net.step(X, Y, optimizer=opt)
    assert other.steps == 1 and opt.steps == 10
    assert not np.array_equal(net.params, twin.params)
    with pytest.raises(ValueError, match="steps"):
        other.steps = -1


def test_a_copy_of_an_optimiser_keeps_its_own_state_and_count(rng):
    import copy

    net = make_net()
    X, Y = random_batch(rng, net, 12)
    opt, copies = optim.Adam(lr=LR), []
    net.fit(X, Y, epochs=3, batch_size=4, shuffle=False, optimizer=opt,
            callback=lambda epoch, logs: copies.append(copy.copy(opt)) if epoch == 0 else None)
    snapshot = copies[0]
    assert snapshot.steps == 3 and opt.steps == 9
    assert not np.shares_memory(snapshot.state["m"], opt.state["m"])
    snapshot.steps = 0
    assert opt.steps == 9
    opt.log = open(__file__)  # a user's attribute that cannot be deep-copied: shared
    try:
        assert copy.copy(opt).log is opt.log
    finally:
        opt.log.close()


def test_step_counts_out_of_range_are_refused_and_the_count_kept():
    opt = optim.Adam(lr=LR)
    for bad in (2**63, 2**64, -1):
        with pytest.raises(ValueError, match="steps"):
            opt.steps = bad
    with pytest.raises(TypeError, match="steps"):
        opt.steps = 1.0
    assert opt.steps == 0


def test_a_subclass_may_set_steps_before_the_base_init():
    class Counted(optim.Adam):
        def __init__(self, **kwargs):
            self.steps = 5
            super().__init__(**kwargs)

    assert Counted(lr=LR).steps == 0  # the base's __init__ starts a count, as before


def test_reset_in_a_callback_leaves_a_fresh_optimiser(rng):
    """The fit goes on with the state it started with; the object is left as reset made it,
    so its next fit starts as a new optimiser's."""
    net, twin = make_net(), make_net()
    X, Y = random_batch(rng, net, 12)
    opt = optim.Adam(lr=LR)
    net.fit(X, Y, epochs=2, batch_size=4, shuffle=False, optimizer=opt,
            callback=lambda epoch, logs: opt.reset() if epoch == 0 else None)
    assert opt.steps == 0 and opt.state == {}
    twin.params = net.params
    net.fit(X, Y, epochs=1, optimizer=opt)
    twin.fit(X, Y, epochs=1, optimizer=optim.Adam(lr=LR))
    np.testing.assert_array_equal(net.params, twin.params)


def test_a_dpsgd_step_count_cannot_go_back(rng):
    """Its noise is indexed by the count: going back would add the same noise again."""
    net = make_net()
    X, Y = random_batch(rng, net, 8)
    opt = optim.DPSGD(lr=LR, max_grad_norm=1.0, noise_multiplier=1.0)
    net.step(X, Y, optimizer=opt)
    net.step(X, Y, optimizer=opt)
    with pytest.raises(ValueError, match="noise already added"):
        opt.steps = 0
    assert opt.steps == 2
    opt.steps = 5  # forward is allowed
    opt.reset()
    assert opt.steps == 0


def test_an_optimiser_pickled_with_a_plain_step_count_loads():
    """Pickles from releases where ``steps`` was a plain attribute keep their count."""
    import pickle

    old = optim.Adam(lr=LR).__dict__ | {"steps": 7}
    del old["_steps"]
    opt = optim.Adam.__new__(optim.Adam)
    opt.__setstate__(old)
    assert opt.steps == 7 and "steps" not in vars(opt)
    assert pickle.loads(pickle.dumps(opt)).steps == 7
    # and what earlier versions read back: a plain "steps" in the pickled state
    assert opt.__getstate__()["steps"] == 7


def test_reset_forgets_the_state(rng):
    net, twin = make_net(), make_net()
    X, Y = random_batch(rng, net, 8)
    opt = optim.Adam(lr=LR)
    other = make_net(layers=(4, 9, 3))
    other.fit(X, Y, epochs=4, optimizer=opt)
    opt.reset()
    assert opt.steps == 0 and opt.state == {}
    net.fit(X, Y, epochs=3, optimizer=opt)
    twin.fit(X, Y, epochs=3, optimizer=optim.Adam(lr=LR))
    np.testing.assert_array_equal(net.params, twin.params)


# ---------------------------------------------------------------------- (d) bad hyperparameters
@pytest.fixture
def small():
    net = make_net()
    X, Y = random_batch(np.random.default_rng(0), net, 5)
    return net, X, Y


def test_unknown_optimizer_name_lists_the_valid_ones(small):
    net, X, Y = small
    with pytest.raises(ValueError, match=r"optimizer must be one of sgd, momentum, nesterov, adam, "
                                         r"adamw, rprop\b.*got 'adagrad'") as error:
        net.fit(X, Y, 1, optimizer="adagrad")
    assert all(name in str(error.value) for name in optim.OPTIMIZERS)


@pytest.mark.parametrize("name, keyword, valid", [
    ("adam", "momentum", "lr, betas, eps, weight_decay"),
    ("sgd", "betas", "lr, momentum, nesterov, weight_decay"),
    ("rprop", "eps", "lr, etas, step_sizes, weight_decay"),
])
def test_unknown_hyperparameter_names_the_valid_ones(small, name, keyword, valid):
    net, X, Y = small
    with pytest.raises(TypeError, match=rf"'{keyword}' is neither a keyword of fit nor a "
                                        rf"hyperparameter of optimizer '{name}' \(it takes "
                                        rf"{valid}\)"):
        net.fit(X, Y, 1, optimizer=name, **{keyword: 0.5})


@pytest.mark.parametrize("keyword, meant", [("batchsize", "batch_size"),
                                            ("optimiser", "optimizer"), ("beta", "betas")])
def test_a_misspelt_keyword_of_fit_or_the_optimizer_gets_a_suggestion(small, keyword, meant):
    net, X, Y = small
    with pytest.raises(TypeError, match=rf"'{keyword}' is neither .* did you mean '{meant}'\?"):
        net.fit(X, Y, 1, **{keyword: 2})


@pytest.mark.parametrize("betas, which, value", [((0.9, 1.0), 1, "1.0"), ((1.0, 0.999), 0, "1.0"),
                                                 ((-0.1, 0.999), 0, "-0.1"),
                                                 ((0.9, 1.5), 1, "1.5")])
def test_betas_out_of_range_refused(small, betas, which, value):
    net, X, Y = small
    with pytest.raises(ValueError, match=rf"betas\[{which}\] must be a finite number in "
                                         rf"\[0, 1\), got {value}"):
        net.fit(X, Y, 1, optimizer="adam", betas=betas)


def test_betas_not_a_pair_refused():
    with pytest.raises(TypeError, match=r"betas must be a pair of numbers, got 0.9"):
        optim.Adam(betas=0.9)


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf")])
@pytest.mark.parametrize("where", ["fit", "object", "step"])
def test_non_positive_lr_refused(small, where, lr):
    net, X, Y = small
    with pytest.raises(ValueError, match=r"lr must be a finite number .*got"):
        if where == "fit":
            net.fit(X, Y, 1, lr=lr, optimizer="adam")
        elif where == "object":
            optim.SGD(lr=lr)
        else:
            net.step(X, Y, lr, optimizer=optim.SGD())


@pytest.mark.parametrize("hyperparameters", [{"optimizer": "nesterov", "momentum": 0.0},
                                             {"optimizer": "sgd", "nesterov": True}])
def test_nesterov_without_momentum_refused(small, hyperparameters):
    net, X, Y = small
    with pytest.raises(ValueError, match=r"nesterov needs a momentum > 0"):
        net.fit(X, Y, 1, **hyperparameters)


@pytest.mark.parametrize("hyperparameters, pattern", [
    ({"momentum": 1.5}, r"momentum must be a finite number in \[0, 1\], got 1.5"),
    ({"weight_decay": -1.0}, r"weight_decay must be a finite number >= 0, got -1.0"),
])
def test_other_hyperparameters_out_of_range_refused(small, hyperparameters, pattern):
    net, X, Y = small
    with pytest.raises(ValueError, match=pattern):
        net.fit(X, Y, 1, optimizer="momentum", **hyperparameters)


@pytest.mark.parametrize("etas, step_sizes, pattern", [
    ((1.5, 1.2), (1e-6, 50), r"etas\[0\] must be a finite number in \(0, 1\), got 1.5"),
    ((0.5, 0.9), (1e-6, 50), r"etas\[1\] must be a finite number > 1, got 0.9"),
    ((0.5, 1.2), (1.0, 0.1), r"step_sizes must be \(min, max\) with min <= max"),
])
def test_rprop_hyperparameters_out_of_range_refused(etas, step_sizes, pattern):
    with pytest.raises(ValueError, match=pattern):
        optim.Rprop(etas=etas, step_sizes=step_sizes)


def test_hyperparameters_with_an_optimizer_object_refused(small):
    net, X, Y = small
    with pytest.raises(TypeError, match=r"hyperparameters \['betas'\] go to the optimizer "
                                        r"object's constructor, not to fit"):
        net.fit(X, Y, 1, optimizer=optim.Adam(), betas=(0.5, 0.5))


def test_optimizer_of_the_wrong_type_refused_by_step(small):
    net, X, Y = small
    with pytest.raises(TypeError, match=r"optimizer must be a fastprop.optim.Optimizer, got str"):
        net.step(X, Y, optimizer="adam")


@pytest.mark.parametrize("other_layers, other_dtype, pattern", [
    ((4, 9, 3), "float64", r"holds state for 51 parameters of float64; the network has 75 of "
                           r"float64"),
    ((4, 6, 3), "float32", r"holds state for 51 parameters of float64; the network has 51 of "
                           r"float32"),
], ids=["other-size", "other-dtype"])
@pytest.mark.parametrize("how", ["fit", "step"])
def test_state_of_another_network_refused(small, how, other_layers, other_dtype, pattern):
    net, X, Y = small
    opt = optim.Adam()
    net.fit(X, Y, 1, optimizer=opt)
    other = make_net(other_dtype, layers=other_layers)
    before = other.params.copy()
    with pytest.raises(ValueError, match=pattern + r"\. Use a new optimiser \(or call reset\(\)\)"):
        if how == "fit":
            other.fit(X, Y, 1, optimizer=opt)
        else:
            other.step(X, Y, optimizer=opt)
    np.testing.assert_array_equal(other.params, before)
    assert opt.steps == 1


@pytest.mark.parametrize("make", [lambda: optim.SGD(lr=0.1),
                                  lambda: optim.DPSGD(lr=0.1, seed=1),
                                  lambda: optim.SGD(lr=0.1, momentum=0.9),
                                  lambda: optim.Adam(lr=0.1)])
def test_a_used_optimiser_pickles_and_copies(rng, make):
    """Also SGD without momentum, which keeps no buffer (its state's m is None)."""
    import copy
    import pickle

    net = fastprop.Network([3, 4, 1], "tanh", seed=0)
    X, Y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    opt = make()
    net.step(X, Y, optimizer=opt)
    copies = [pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)]
    a = copy.deepcopy(net)
    a.step(X, Y, optimizer=opt)
    for other in copies:
        assert other.steps == 1 and other.state.keys() == opt.state.keys()
        b = copy.deepcopy(net)
        b.step(X, Y, optimizer=other)  # the copy's next step is the original's
        assert np.array_equal(a.params, b.params)


@pytest.mark.parametrize("make", [lambda: optim.Adam(lr=0.05), lambda: optim.Rprop(lr=0.05),
                                  lambda: optim.SGD(lr=0.05, momentum=0.9)])
def test_an_optimiser_copied_in_a_callback_resumes_the_fit(rng, make):
    """Its step count is that of the steps done so far (the object's own is brought up to
    date when the fit ends), so a fit resumed from the copy ends as the uninterrupted one."""
    import pickle

    X, Y = rng.standard_normal((24, 3)), rng.standard_normal((24, 1))
    whole = fastprop.Network([3, 4, 1], "tanh", seed=0)
    whole.fit(X, Y, 4, optimizer=make(), batch_size=8, shuffle=False)
    saved = {}

    def keep_after_two(epoch, logs):
        if epoch == 1:
            saved["opt"], saved["params"] = pickle.dumps(opt), net.params.copy()

    net, opt = fastprop.Network([3, 4, 1], "tanh", seed=0), make()
    net.fit(X, Y, 4, optimizer=opt, batch_size=8, shuffle=False, callback=keep_after_two)
    resumed = fastprop.Network([3, 4, 1], "tanh", seed=0)
    resumed.params = saved["params"]
    resumed.fit(X, Y, 2, optimizer=pickle.loads(saved["opt"]), batch_size=8, shuffle=False)
    assert np.array_equal(resumed.params, whole.params)
