"""
Dropout, weight decay and weight averaging against overfitting
==============================================================

A network far larger than its data can learn its training rows by heart.
Trained on 200 of the handwritten digits bundled with fastbp, a
64-128-128-10 ReLU network has about 26 000 weights, 130 per training row:
its loss on those rows can fall towards zero while its loss on 600 held-out
digits does not follow. The gap between the two curves is what the network
learnt about its 200 rows that does not hold for others: overfitting.

Three remedies, each an argument of its own:

- dropout (``Network(..., dropout=0.3)``, :ref:`dropout`): in each batch,
  each hidden unit is zeroed with probability 0.3 and the others scaled by
  1/0.7, so that no unit can rely on another one being there;
- decoupled weight decay (:class:`fastbp.AdamW`, ``weight_decay=0.3``): each
  step first shrinks the weights by the factor 1 − lr·λ, pulling the ones
  the data does not keep up back towards zero;
- an exponential moving average of the weights (``fit(..., ema=0.99)``,
  :ref:`weight_averaging`): the network is scored, and ends, with the
  average of its recent weights rather than the last step's.

Every run starts from the same initial weights, visits the rows in the same
order and trains by AdamW (a decay of 0 is Adam's step) with the same rate
for the same number of epochs; only the remedy changes.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastbp

X, Y = fastbp.load_digits()
order = np.random.default_rng(0).permutation(len(X))
train, held_out = order[:200], order[200:800]
sizes = [64, 128, 128, 10]
EPOCHS = 150

# name: (dropout, weight decay, ema)
settings = {
    "no remedy": (None, 0.0, None),
    "dropout 0.3": (0.3, 0.0, None),
    "weight decay 0.3": (None, 0.3, None),
    "ema 0.99": (None, 0.0, 0.99),
    "all three": (0.3, 0.3, 0.99),
}


def training_loss(epoch, history, network):
    """A callback: the loss on all training rows after the epoch, with every
    unit (the history's ``"loss"`` is the running mean of the batches as each
    saw them, dropped units and all)."""
    history.setdefault("train_loss", []).append(network.loss(X[train], Y[train]))


start = fastbp.Network(sizes, activation="relu", output_activation="softmax", seed=0)
# n_threads=1: the batches here are too small for fastbp to split over threads
# (see the threads guide), and one thread stays quick on a busy machine
histories = {}
for name, (dropout, weight_decay, ema) in settings.items():
    network = fastbp.Network(sizes, activation="relu", output_activation="softmax",
                             dropout=dropout)
    network.set_weights(start.weights, start.biases)
    optimizer = fastbp.AdamW(lr=2e-3, weight_decay=weight_decay)
    histories[name] = network.fit(X[train], Y[train], optimizer=optimizer, epochs=EPOCHS,
                                  batch_size=32, seed=1, ema=ema, n_threads=1,
                                  validation_data=(X[held_out], Y[held_out]),
                                  callbacks=[training_loss])
    histories[name]["accuracy"] = network.score(X[held_out], Y[held_out])

# %%
# After the last epoch: the loss on the training rows and on the held-out
# rows, their ratio (the gap, on the log scale of the plots below), the
# held-out accuracy, and the lowest held-out loss of any epoch with the
# epoch it came in.

print(f"{'':17s} {'training':>9s} {'held-out':>9s} {'ratio':>7s} {'accuracy':>9s} "
      f"{'best held-out':>14s} {'at epoch':>8s}")
for name, history in histories.items():
    last_train, last_held_out = history["train_loss"][-1], history["val_loss"][-1]
    best = int(np.argmin(history["val_loss"]))
    print(f"{name:17s} {last_train:9.4f} {last_held_out:9.4f} "
          f"{last_held_out / last_train:7.1f} {history['accuracy']:9.3f} "
          f"{history['val_loss'][best]:14.4f} {best + 1:8d}")

# %%
# Training loss (dashed) and held-out loss (solid) after each epoch, one
# panel per remedy, with the unregularised run's curves in grey; the last
# panel overlays every held-out curve.

fig, axes = plt.subplots(2, 3, figsize=(10, 6.5), layout="constrained", sharex=True)
epochs = np.arange(1, EPOCHS + 1)
colours = dict(zip(settings, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
plain = histories["no remedy"]
for ax, (name, history) in zip(axes.flat, histories.items()):
    if name != "no remedy":
        ax.sharey(axes[0, 0])
        ax.plot(epochs, plain["train_loss"], "--", color="0.75")
        ax.plot(epochs, plain["val_loss"], color="0.75")
    ax.plot(epochs, history["train_loss"], "--", color=colours[name], label="training")
    ax.plot(epochs, history["val_loss"], color=colours[name], label="held-out")
    ax.set(title=name, yscale="log")
    ax.legend(fontsize="small")
# the last panel: the held-out curves alone, on a scale of their own
every = axes[-1, -1]
for name, history in histories.items():
    every.plot(epochs, history["val_loss"], color=colours[name], label=name)
lows = [min(history["val_loss"]) for history in histories.values()]
every.set(title="held-out loss of each", ylim=(0.9 * min(lows), 2 * max(lows)))
every.legend(fontsize="small")
for ax in axes[-1]:
    ax.set_xlabel("epoch")
for ax in axes[:, 0]:
    ax.set_ylabel("cross-entropy")
plt.show()
