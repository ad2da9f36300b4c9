"""
Optimisers compared on handwritten digits
=========================================

Each optimiser of :mod:`fastbp.optim` trains the same network (64-64-10,
tanh hidden units, softmax output, cross-entropy) from the same initial
weights on 1 200 of the 1 797 handwritten digits bundled with fastbp (no
download), visiting the rows in the same order, and is scored after every
epoch on the other 597 rows (``validation_data``). The minibatch optimisers
take batches of 32 rows, at their default settings (SGD with momentum 0.9
at a tenth of SGD's default rate, as momentum 0.9 makes its steps about ten
times longer). Rprop (iRPROP−, FANN's default algorithm) and L-BFGS are
meant for full batches: they take one step (L-BFGS: one iteration and its
line search) over all 1 200 rows an epoch, and L-BFGS stops once it has
converged. :ref:`optimizer_formulas` gives each one's update rule.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastbp

X, Y = fastbp.load_digits()
order = np.random.default_rng(0).permutation(len(X))
train, valid = order[:1200], order[1200:]
sizes = [64, 64, 10]
EPOCHS = 40

# name: (optimiser, rows a step)
contenders = {
    "SGD": (fastbp.SGD(), 32),
    "SGD, momentum 0.9": (fastbp.SGD(lr=0.01, momentum=0.9), 32),
    "Adam": (fastbp.Adam(), 32),
    "AdamW": (fastbp.AdamW(), 32),
    "NAdam": (fastbp.NAdam(), 32),
    "RMSprop": (fastbp.RMSprop(), 32),
    "Adagrad": (fastbp.Adagrad(), 32),
    "Rprop, full batch": (fastbp.Rprop(), len(train)),
    "L-BFGS, full batch": (fastbp.LBFGS(), len(train)),
}


def training_loss(epoch, history, network):
    """A callback: the loss on all training rows after the epoch (the
    history's ``"loss"`` is the running mean of the batches as each saw it)."""
    history.setdefault("train_loss", []).append(network.loss(X[train], Y[train]))


start = fastbp.Network(sizes, activation="tanh", output_activation="softmax", seed=0)
# n_threads=1: the batches here are too small for fastbp to split over threads
# (see the threads guide), and one thread stays quick on a busy machine
histories = {}
for name, (optimizer, batch_size) in contenders.items():
    network = fastbp.Network(sizes, activation="tanh", output_activation="softmax")
    network.set_weights(start.weights, start.biases)
    histories[name] = network.fit(X[train], Y[train], optimizer=optimizer, epochs=EPOCHS,
                                  batch_size=batch_size, seed=1, n_threads=1,
                                  validation_data=(X[valid], Y[valid]),
                                  callbacks=[training_loss])
    histories[name]["accuracy"] = network.score(X[valid], Y[valid])


def epochs(curve):
    """The epochs 1, 2, ... of a per-epoch curve."""
    return np.arange(1, len(curve) + 1)

# %%
# The rows sorted by the lowest validation loss each optimiser reached, with
# the epoch it reached it in and the validation accuracy after the last
# epoch.

ranked = sorted(histories, key=lambda name: min(histories[name]["val_loss"]))
print(f"{'optimiser':20s} {'best val. loss':>14s} {'at epoch':>8s} {'last':>7s} "
      f"{'accuracy':>8s}")
for name in ranked:
    val_loss = histories[name]["val_loss"]
    best = int(np.argmin(val_loss))
    print(f"{name:20s} {val_loss[best]:14.4f} {best + 1:8d} {val_loss[-1]:7.4f} "
          f"{histories[name]['accuracy']:8.3f}")

# %%
# Training loss (on all 1 200 training rows, dashed) and validation loss
# (solid) after each epoch, one panel per optimiser; the grey lines are the
# other optimisers' validation losses. A validation curve that turns up
# while its training curve goes on down is overfitting:
# :ref:`sphx_glr_auto_examples_plot_regularization.py` shows what prevents
# it. L-BFGS's curves end where it converged.

fig, axes = plt.subplots(3, 3, figsize=(10, 8), layout="constrained", sharex=True,
                         sharey=True)
for ax, (name, history) in zip(axes.flat, histories.items()):
    for other in histories.values():
        ax.plot(epochs(other["val_loss"]), other["val_loss"], color="0.85", linewidth=0.8)
    ax.plot(epochs(history["train_loss"]), history["train_loss"], "--", color="tab:blue",
            label="training")
    ax.plot(epochs(history["val_loss"]), history["val_loss"], color="tab:orange",
            label="validation")
    ax.set_title(name, fontsize="medium")
    ax.set_yscale("log")
for ax in axes[-1]:
    ax.set_xlabel("epoch")
for ax in axes[:, 0]:
    ax.set_ylabel("cross-entropy")
axes[0, 0].legend(fontsize="small")
plt.show()
