"""
Regression on the diabetes data, next to scikit-learn
=====================================================

:class:`fastbp.MLPRegressor` takes scikit-learn's parameters and, with the
same ``random_state``, draws the same initial weights and shuffles and takes
the same steps as :class:`sklearn.neural_network.MLPRegressor`. Here both fit
scikit-learn's diabetes data (442 patients, 10 standardised features, disease
progression after a year) in a pipeline with a scaler.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as SklearnMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastbp import MLPRegressor

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
y_scale = y_train.std()  # train on a target of unit spread; report in its units

# a small network, an L2 penalty (alpha) and early stopping on a fifth of
# the training rows: 331 rows overfit a large network quickly
params = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.003,
              momentum=0.9, batch_size=32, alpha=1.0, max_iter=300, early_stopping=True,
              validation_fraction=0.2, random_state=0)
models = {"fastbp": MLPRegressor(**params), "scikit-learn": SklearnMLPRegressor(**params)}
fitted = {}
for name, model in models.items():
    pipe = make_pipeline(StandardScaler(), model)
    started = time.perf_counter()
    pipe.fit(X_train, y_train / y_scale)
    seconds = time.perf_counter() - started
    fitted[name] = pipe
    print(f"{name:>12}: R² on the test rows {pipe.score(X_test, y_test / y_scale):.4f}, "
          f"fit {seconds:.3f} s")

linear = make_pipeline(StandardScaler(), LinearRegression()).fit(X_train, y_train / y_scale)
print(f"      linear: R² on the test rows {linear.score(X_test, y_test / y_scale):.4f} "
      "(the data are noisy: a linear model does about as well)")

curves = [fitted[name][-1].loss_curve_ for name in models]
print("epochs:", [fitted[name][-1].n_iter_ for name in models],
      "largest relative difference of the loss curves:",
      f"{np.max(np.abs(np.subtract(*curves)) / np.abs(curves[1])):.1e}")

# %%
# The two loss curves lie on top of each other; the predictions of the
# fastbp model against the truth on the test rows.

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for name, curve, style in zip(models, curves, ("-", "--")):
    left.plot(np.arange(1, len(curve) + 1), curve, style, label=name)
left.set(xlabel="epoch", ylabel="loss: ½ mean squared error (scaled target)",
         yscale="log", title="training loss")
left.legend()
predicted = fitted["fastbp"].predict(X_test) * y_scale
right.scatter(y_test, predicted, s=12)
lims = [y.min(), y.max()]
right.plot(lims, lims, color="grey", linestyle=":")
right.set(xlabel="disease progression (truth)", ylabel="fastbp prediction",
          title="test rows")
plt.show()
