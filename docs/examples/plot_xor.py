"""
XOR: the decision boundary of a tiny network
============================================

XOR is the classic problem a single neuron cannot solve: no straight line
separates (0, 0) and (1, 1) from (0, 1) and (1, 0). One hidden layer of a few
tanh units can. We train a 2-4-1 network with a sigmoid output and binary
cross-entropy, by full-batch Adam, and draw its output over the plane.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastbp

X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
y = np.array([0, 1, 1, 0])

net = fastbp.Network([2, 4, 1], activation="tanh", output_activation="sigmoid", seed=3)
history = net.fit(X, y, loss="bce", optimizer=fastbp.Adam(lr=0.05), epochs=600,
                  batch_size=4)
print("labels:", net.predict_labels(X), "outputs:", net.predict(X).ravel().round(3))
print(f"loss after {len(history['loss'])} epochs: {history['loss'][-1]:.4f}")

# %%
# The network's output y = σ(a) over the plane: the boundary y = 0.5 bends
# around the two classes, which a single neuron (a straight line) cannot do.

grid = np.linspace(-0.5, 1.5, 201)
gx, gy = np.meshgrid(grid, grid)
out = net.predict(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
image = left.contourf(gx, gy, out, levels=np.linspace(0, 1, 11), cmap="RdBu_r")
left.contour(gx, gy, out, levels=[0.5], colors="k", linewidths=1.5)
for label, marker in ((0, "o"), (1, "s")):
    rows = y == label
    left.scatter(X[rows, 0], X[rows, 1], marker=marker, s=140, facecolors="white",
                 edgecolors="k", linewidths=2, label=f"class {label}")
left.legend(loc="upper center", fontsize="small")
left.set(xlabel="x₁", ylabel="x₂", title="output of 2-4-1 (tanh, sigmoid), boundary 0.5")
fig.colorbar(image, ax=left, label="network output σ(a)")
fastbp.plot_history(history, loss="bce", ax=right, title="training loss")
plt.show()
