"""
The computational graph of f = (x + y) · z
==========================================

The notes' second derivation of backpropagation: write a function as a
graph of elementary operations and run the chain rule backwards, node by
node. :class:`fastbp.reference.graph.Value` is such a node. We build the
notes' example at x = −2, y = 5, z = −4, run ``backward()``, and draw the
graph with the values (forward, black) and the gradients ∂f/∂node (backward,
red).
"""

import matplotlib.pyplot as plt

from fastbp.reference.graph import Value, topological_order

x, y, z = Value(-2.0), Value(5.0), Value(-4.0)
q = x + y
f = q * z
f.backward()
print(f"f = {f.data}, ∂f/∂x = {x.grad}, ∂f/∂y = {y.grad}, ∂f/∂z = {z.grad}, ∂f/∂q = {q.grad}")

# %%
# Each operation remembers its inputs (``parents``); :func:`topological_order`
# lists the nodes inputs first, which is the order of the forward pass, and
# ``backward()`` walks it in reverse. A sum passes its gradient to both
# inputs unchanged; a product passes each input the other input times the
# gradient.

names = {id(x): "x", id(y): "y", id(z): "z", id(q): "q = x + y", id(f): "f = q · z"}
where = {id(x): (0, 2), id(y): (0, 1), id(z): (0, 0), id(q): (1, 1.5), id(f): (2, 0.75)}

fig, ax = plt.subplots(figsize=(8, 3.8), layout="constrained")
for node in topological_order(f):
    x0, y0 = where[id(node)]
    for parent in node.parents:
        x1, y1 = where[id(parent)]
        ax.annotate("", xy=(x0 - 0.17, y0), xytext=(x1 + 0.17, y1),
                    arrowprops=dict(arrowstyle="->", color="0.4"))
    ax.add_patch(plt.Circle((x0, y0), 0.16, facecolor="white", edgecolor="k"))
    ax.text(x0, y0 + 0.26, names[id(node)], ha="center", fontsize=11)
    ax.text(x0, y0 + 0.03, f"{node.data:g}", ha="center", va="center", fontsize=11)
    ax.text(x0, y0 - 0.3, f"∂f = {node.grad:g}", ha="center", color="tab:red", fontsize=10)
ax.set(xlim=(-0.5, 2.5), ylim=(-0.55, 2.5), aspect="equal")
ax.axis("off")
ax.set_title("forward: values (black); backward: ∂f/∂node (red)")
plt.show()

# %%
# The same engine differentiates a whole network:
# :func:`fastbp.reference.graph_gradients` builds J over a batch from Values
# and reads ∂J/∂W off the weights' nodes. It agrees with the per-neuron δ
# equations of :func:`fastbp.reference.gradients`, which share no code with it.

from fastbp import reference  # noqa: E402

W = [[[0.1, -0.2], [0.3, 0.4]], [[0.5], [-0.6]]]
b = [[0.0, -0.1], [0.2]]
X, T = [[1.0, 2.0], [-1.0, 0.5]], [[1.0], [0.0]]
by_graph = reference.graph_gradients(W, b, ["tanh", "sigmoid"], X, T, loss="bce")
by_delta = reference.gradients(W, b, ["tanh", "sigmoid"], X, T, loss="bce")
print("∂J/∂W, graph:", by_graph[0])
print("∂J/∂W, δ:    ", by_delta[0])
