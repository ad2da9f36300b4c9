"""
Digits: learning curves, validation and early stopping
======================================================

The handwritten digits bundled with fastbp (1797 images of 8×8 pixels, no
download) and a 64-32-10 network with a softmax output and cross-entropy.
``validation_split`` holds out a fifth of the rows and records their loss
after every epoch; :class:`fastbp.EarlyStopping` stops once that loss has
not improved for ``patience`` epochs and restores the best epoch's weights.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastbp

X, y = fastbp.load_digits(one_hot=False)
order = np.random.default_rng(0).permutation(len(X))
train, test = order[:1400], order[1400:]

# %%
# Two learning rates, the same architecture and seed. The larger rate
# overfits sooner: its validation loss turns upwards after a few epochs and
# early stopping ends the fit there.

fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained", sharey=True)
for ax, lr in zip(axes, (0.003, 0.03)):
    net = fastbp.Network([64, 32, 10], activation="relu", output_activation="softmax",
                         seed=0)
    stop = fastbp.EarlyStopping(patience=5)
    history = net.fit(X[train], y[train], loss="cross_entropy",
                      optimizer=fastbp.Adam(lr=lr), epochs=200, batch_size=32, seed=0,
                      validation_split=0.2, early_stopping=stop)
    accuracy = net.score(X[test], y[test])
    print(f"lr={lr}: {len(history['loss'])} epochs, best epoch {stop.best_epoch + 1}, "
          f"held-out accuracy {accuracy:.3f}")
    fastbp.plot_history(history, loss="cross_entropy", ax=ax, log_scale=True,
                        title=f"Adam lr={lr}: test accuracy {accuracy:.3f}")
    ax.axvline(stop.best_epoch + 1, color="grey", linestyle=":", label="best epoch")
    ax.legend()
plt.show()

# %%
# Some of the held-out digits, with the network's labels (the last one
# trained, lr=0.03, with its best weights restored).

predicted = net.predict_labels(X[test[:10]])
fig, axes = plt.subplots(1, 10, figsize=(10, 1.6), layout="constrained")
for ax, row, label in zip(axes, X[test[:10]], predicted):
    ax.imshow(row.reshape(8, 8), cmap="gray_r")
    ax.set_title(str(label))
    ax.axis("off")
plt.show()
