"""The warm-up, 1cycle, warm-restart, exponential and plateau schedules
(issue #28): each rate sequence of a real fit against torch.optim.lr_scheduler's,
stepped once an epoch, to 1e-12."""
import math

import numpy as np
import pytest

import fastbp
from fastbp import optim

LR0 = 0.05


def problem(seed=0, n=48):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    Y = (np.tanh(X @ rng.normal(size=(4, 1))) + 1) / 2
    return X, Y


def fit_rates(schedule, epochs, dtype="float64", n_threads=1, chunked=False, validation=True,
              **fit_args):
    """The rates and history of a fit with ``schedule``, and the network."""
    X, Y = problem()
    X_val, Y_val = problem(seed=1, n=24)
    net = fastbp.Network([4, 5, 1], activation="tanh", dtype=dtype, seed=0)
    data = (fastbp.array_chunks(X, Y, chunk_rows=20), None) if chunked else (X, Y)
    history = net.fit(*data, optimizer=fastbp.SGD(lr=LR0, momentum=0.5, schedule=schedule),
                      epochs=epochs, batch_size=8, seed=3, n_threads=n_threads,
                      validation_data=(X_val, Y_val) if validation else None, **fit_args)
    return history["lr"], history, net


def torch_rates(make, epochs, values=None, lr0=LR0):
    """PyTorch's rate for each epoch: read before the epoch, the scheduler
    stepped after it (with that epoch's monitored value, for ReduceLROnPlateau)."""
    torch = pytest.importorskip("torch")
    weight = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([weight], lr=lr0, momentum=0.5)
    scheduler = make(torch.optim.lr_scheduler, opt)
    rates = []
    for epoch in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradient: nothing moves, but the scheduler sees a step
        if values is None:
            scheduler.step()
        else:
            scheduler.step(values[epoch])
    return rates


def assert_rates_equal(ours, theirs):
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


CASES = {
    "exponential": (
        lambda: optim.ExponentialDecay(0.8), 12,
        lambda s, opt: s.ExponentialLR(opt, gamma=0.8)),
    "warmup alone": (
        lambda: optim.LinearWarmup(4), 9,
        lambda s, opt: s.LinearLR(opt, start_factor=1 / 5, total_iters=4)),
    "warmup then cosine": (
        lambda: optim.LinearWarmup(3, then=optim.CosineDecay(6, min_lr=0.001), start_factor=0.1),
        9,  # up to the cosine's end, where CosineAnnealingLR turns up again
        lambda s, opt: s.SequentialLR(opt, [s.LinearLR(opt, start_factor=0.1, total_iters=3),
                                            s.CosineAnnealingLR(opt, T_max=6, eta_min=0.001)],
                                      milestones=[3])),
    "warmup then exponential": (
        lambda: optim.LinearWarmup(2, then=optim.ExponentialDecay(0.7)), 10,
        lambda s, opt: s.SequentialLR(opt, [s.LinearLR(opt, start_factor=1 / 3, total_iters=2),
                                            s.ExponentialLR(opt, gamma=0.7)], milestones=[2])),
    "warmup then step": (
        lambda: optim.LinearWarmup(3, then=optim.StepDecay(2, 0.5), start_factor=0.5), 10,
        lambda s, opt: s.SequentialLR(opt, [s.LinearLR(opt, start_factor=0.5, total_iters=3),
                                            s.StepLR(opt, step_size=2, gamma=0.5)],
                                      milestones=[3])),
    "warmup then restarts": (
        lambda: optim.LinearWarmup(2, then=optim.CosineWarmRestarts(3, 2)), 14,
        lambda s, opt: s.SequentialLR(
            opt, [s.LinearLR(opt, start_factor=1 / 3, total_iters=2),
                  s.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2)], milestones=[2])),
    "one cycle": (
        lambda: optim.OneCycle(10), 10,
        lambda s, opt: s.OneCycleLR(opt, max_lr=LR0, total_steps=10, cycle_momentum=False)),
    "one cycle linear": (
        lambda: optim.OneCycle(13, pct_start=0.4, anneal_strategy="linear", div_factor=10.0,
                               final_div_factor=100.0), 13,
        lambda s, opt: s.OneCycleLR(opt, max_lr=LR0, total_steps=13, pct_start=0.4,
                                    anneal_strategy="linear", div_factor=10.0,
                                    final_div_factor=100.0, cycle_momentum=False)),
    "one cycle three phases": (
        lambda: optim.OneCycle(17, pct_start=0.25, three_phase=True), 17,
        lambda s, opt: s.OneCycleLR(opt, max_lr=LR0, total_steps=17, pct_start=0.25,
                                    three_phase=True, cycle_momentum=False)),
    "restarts": (
        lambda: optim.CosineWarmRestarts(4, min_lr=0.002), 13,
        lambda s, opt: s.CosineAnnealingWarmRestarts(opt, T_0=4, eta_min=0.002)),
    "restarts growing": (
        lambda: optim.CosineWarmRestarts(2, T_mult=3, min_lr=0.001), 30,
        lambda s, opt: s.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=3, eta_min=0.001)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_rates_of_a_fit_equal_torchs_schedulers(case):
    make, epochs, make_torch = CASES[case]
    ours, _, _ = fit_rates(make(), epochs)
    theirs = torch_rates(make_torch, epochs)
    assert len(set(theirs)) > 2  # the schedule moves
    assert_rates_equal(ours, theirs)


@pytest.mark.parametrize("case", ["warmup then cosine", "one cycle three phases",
                                  "restarts growing"])
@pytest.mark.parametrize("dtype,n_threads,chunked", [
    ("float32", 1, False), ("float64", 2, False), ("float32", 2, True), ("float64", 1, True)])
def test_every_fit_path_follows_the_schedule(case, dtype, n_threads, chunked):
    make, epochs, make_torch = CASES[case]
    ours, _, net = fit_rates(make(), epochs, dtype, n_threads, chunked)
    assert_rates_equal(ours, torch_rates(make_torch, epochs))
    # the thread count changes no bit
    _, _, one = fit_rates(make(), epochs, dtype, 1 if n_threads == 2 else 2, chunked)
    assert net.params.tobytes() == one.params.tobytes()


def test_the_schedule_sets_the_steps_an_epoch_takes():
    """A scheduled fit takes the steps of one-epoch fits at its rates."""
    X, Y = problem()
    rates, _, net = fit_rates(optim.OneCycle(6), 6, validation=False)
    twin = fastbp.Network([4, 5, 1], activation="tanh", seed=0)
    sgd = fastbp.SGD(lr=LR0, momentum=0.5)
    shuffles = np.random.default_rng(3)
    for lr in rates:
        sgd.lr = lr
        sgd.state(twin).lr = lr  # the kept velocity goes on; the rate is this epoch's
        twin.fit(X, Y, optimizer=sgd, epochs=1, batch_size=8, seed=shuffles)
    assert net.params.tobytes() == twin.params.tobytes()
    assert rates[0] == pytest.approx(LR0 / 25, rel=1e-15)  # the climb starts low


def test_one_cycle_keeps_its_last_rate_past_the_cycle():
    rates, _, _ = fit_rates(optim.OneCycle(5), 8)
    assert rates[4] == pytest.approx(LR0 / 25 / 1e4, rel=1e-12)
    assert rates[5:] == [rates[4]] * 3


def test_a_one_epoch_climb_starts_at_its_start_rate():
    # pct_start * epochs = 1: the climb spans epoch 0 alone (PyTorch divides by zero there)
    rates, _, _ = fit_rates(optim.OneCycle(10, pct_start=0.1), 3)
    assert rates[0] == pytest.approx(LR0 / 25, rel=1e-15)
    low = LR0 / 25 / 1e4
    assert rates[1] == pytest.approx(low + (LR0 - low) / 2 * (1 + math.cos(math.pi / 9)),
                                     rel=1e-12)


def test_a_second_fit_goes_on_along_the_schedule():
    X, Y = problem()
    net = fastbp.Network([4, 5, 1], activation="tanh", seed=0)
    sgd = fastbp.SGD(lr=LR0, schedule=optim.LinearWarmup(3, then=optim.OneCycle(5)))
    first = net.fit(X, Y, optimizer=sgd, epochs=4, seed=0)["lr"]
    then = net.fit(X, Y, optimizer=sgd, epochs=5, seed=0)["lr"]
    whole, _, _ = fit_rates(optim.LinearWarmup(3, then=optim.OneCycle(5)), 9)
    assert first + then == whole


def test_after_the_warmup_the_next_schedule_counts_its_own_rows():
    rates, _, _ = fit_rates(optim.LinearWarmup(2, then=optim.InvScaling(0.5)), 5)
    rows = 48
    assert rates[:3] == pytest.approx([LR0 / 3, 2 * LR0 / 3, LR0], rel=1e-15)
    # InvScaling afresh: rows seen since the warm-up ended, not since the fit began
    assert rates[3:] == pytest.approx([LR0 / math.sqrt(rows + 1), LR0 / math.sqrt(2 * rows + 1)],
                                      rel=1e-15)


# -- ReduceLROnPlateau ----------------------------------------------------------

@pytest.mark.parametrize("settings", [
    dict(factor=0.5, patience=1, threshold=0.06),
    dict(factor=0.3, patience=0, threshold=0.01, threshold_mode="abs", cooldown=2),
    dict(factor=0.5, patience=1, threshold=0.05, min_lr=0.01),
])
@pytest.mark.parametrize("validation", [True, False])
def test_reduce_on_plateau_equals_torchs_on_the_same_losses(settings, validation):
    plateau = optim.ReduceLROnPlateau(**settings)
    ours, history, _ = fit_rates(plateau, 25, validation=validation)
    # "auto": the validation loss, else the training loss
    watched = history["val_loss" if validation else "loss"]
    theirs = torch_rates(lambda s, opt: s.ReduceLROnPlateau(opt, **settings), 25, watched)
    assert len(set(theirs)) > 1  # it reduced
    assert_rates_equal(ours, theirs)


def test_reduce_on_plateau_can_watch_the_validation_accuracy():
    X, Y = problem()
    labels = (Y[:, 0] > 0.5).astype(int)
    X_val, Y_val = problem(seed=1, n=24)
    net = fastbp.Network([4, 3, 1], activation="tanh", seed=0)
    plateau = optim.ReduceLROnPlateau(monitor="val_accuracy", mode="max", factor=0.5, patience=1)
    history = net.fit(X, labels, loss="bce", optimizer=fastbp.Adam(lr=0.01, schedule=plateau),
                      epochs=25, seed=0, validation_data=(X_val, (Y_val[:, 0] > 0.5)),
                      metrics=["accuracy"])
    theirs = torch_rates(lambda s, opt: s.ReduceLROnPlateau(opt, mode="max", factor=0.5,
                                                            patience=1),
                         25, history["val_accuracy"], lr0=0.01)
    assert len(set(theirs)) > 1
    assert_rates_equal(history["lr"], theirs)


def test_reduce_on_plateau_keeps_its_count_across_fits():
    X, Y = problem()
    X_val, Y_val = problem(seed=1, n=24)
    net = fastbp.Network([4, 5, 1], activation="tanh", seed=0)
    sgd = fastbp.SGD(lr=LR0, momentum=0.5,
                     schedule=optim.ReduceLROnPlateau(factor=0.5, patience=1, threshold=0.05))
    shuffles = np.random.default_rng(3)
    args = dict(optimizer=sgd, batch_size=8, n_threads=1, validation_data=(X_val, Y_val),
                seed=shuffles)
    rates = net.fit(X, Y, epochs=10, **args)["lr"] + net.fit(X, Y, epochs=10, **args)["lr"]
    whole, _, _ = fit_rates(optim.ReduceLROnPlateau(factor=0.5, patience=1, threshold=0.05), 20)
    assert len(set(whole)) > 2
    assert rates == whole


def test_reduce_on_plateau_names_a_missing_key():
    with pytest.raises(ValueError, match="monitors 'val_loss', which the history does not have"):
        fit_rates(optim.ReduceLROnPlateau(monitor="val_loss"), 2, validation=False)


def test_only_constant_schedules_let_a_fit_run_epochs_in_one_call():
    assert optim.Constant().constant and not optim.StepDecay(2).constant
    for make, _, _ in CASES.values():
        assert not make().constant
    assert not optim.ReduceLROnPlateau().constant


@pytest.mark.parametrize("make,error,match", [
    (lambda: optim.ExponentialDecay(0), ValueError, "gamma must be > 0"),
    (lambda: optim.LinearWarmup(0), ValueError, "epochs must be >= 1"),
    (lambda: optim.LinearWarmup(3, then="cosine"), TypeError, "then must be a"),
    (lambda: optim.LinearWarmup(3, start_factor=0), ValueError, "start_factor must be > 0"),
    (lambda: optim.LinearWarmup(3, start_factor=1.5), ValueError, "start_factor must be <= 1"),
    (lambda: optim.OneCycle(0), ValueError, "epochs must be >= 1"),
    (lambda: optim.OneCycle(5, pct_start=1.2), ValueError, "pct_start must be <= 1"),
    (lambda: optim.OneCycle(5, anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (lambda: optim.OneCycle(5, div_factor=0), ValueError, "div_factor must be > 0"),
    (lambda: optim.OneCycle(5, three_phase=1), TypeError, "three_phase must be True or False"),
    (lambda: optim.CosineWarmRestarts(0), ValueError, "T_0 must be >= 1"),
    (lambda: optim.CosineWarmRestarts(2, T_mult=0), ValueError, "T_mult must be >= 1"),
    (lambda: optim.CosineWarmRestarts(2, T_mult=1.5), TypeError, "T_mult must be an integer"),
    (lambda: optim.ReduceLROnPlateau(factor=1.0), ValueError, "factor must be < 1"),
    (lambda: optim.ReduceLROnPlateau(mode="up"), ValueError, "unknown mode"),
    (lambda: optim.ReduceLROnPlateau(threshold_mode="pct"), ValueError, "threshold_mode"),
    (lambda: optim.ReduceLROnPlateau(patience=-1), ValueError, "patience must be >= 0"),
    (lambda: optim.ReduceLROnPlateau(monitor=3), TypeError, "monitor must be"),
])
def test_bad_schedule_settings_are_named(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_schedules_compare_and_print_by_their_settings():
    one = optim.LinearWarmup(3, then=optim.OneCycle(5))
    assert one == optim.LinearWarmup(3, then=optim.OneCycle(5)) != optim.LinearWarmup(3)
    assert hash(one) == hash(optim.LinearWarmup(3, then=optim.OneCycle(5)))
    assert repr(optim.ExponentialDecay(0.5)) == "ExponentialDecay(gamma=0.5)"
