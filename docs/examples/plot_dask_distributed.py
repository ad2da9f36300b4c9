"""
Training one model on a Dask cluster
====================================

:class:`fastbp.dask.DaskMLPClassifier` takes the parameters of
:class:`fastbp.MLPClassifier` plus a Dask ``client`` (by default the current
one). ``fit`` takes dask arrays or dataframes whose partitions stay on the
workers: with ``solver="lbfgs"`` each iteration sends the weights to the
workers, which compute the loss and gradient of their rows with the compiled
kernels, and sums the results (the same iterations as a single-machine fit);
with ``"sgd"`` and ``"adam"`` each worker trains an epoch on its rows and
the client averages the weights. ``predict`` returns a dask array;
``to_local()`` the fitted plain estimator.

Here a ``LocalCluster`` of two single-threaded worker processes stands in
for a cluster, and the distributed lbfgs fit is set against a fit of the
same rows on one machine: their probabilities fall on the diagonal.
"""

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster

from fastbp import MLPClassifier
from fastbp.dask import DaskMLPClassifier

cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                       dashboard_address=None)
client = Client(cluster)

# 8 000 rows in 4 partitions
rng = np.random.default_rng(0)
X_local = rng.normal(size=(8000, 10))
y_local = (X_local[:, 0] * X_local[:, 1] > 0).astype(int)
X = da.from_array(X_local, chunks=(2000, 10))
y = da.from_array(y_local, chunks=2000)

params = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=30, random_state=0)
distributed = DaskMLPClassifier(**params).fit(X, y)
local = MLPClassifier(**params).fit(X_local, y_local)

p_distributed = distributed.predict_proba(X)[:, 1].compute()   # computed on the workers
p_local = local.predict_proba(X_local)[:, 1]
print("largest difference in p(class 1):", float(np.max(np.abs(p_distributed - p_local))))
print("accuracy on the training rows:", float((distributed.predict(X) == y).mean().compute()))

fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.plot([0, 1], [0, 1], color="0.8", zorder=0)
ax.scatter(p_local, p_distributed, s=4)
ax.set_xlabel("p(class 1), one machine")
ax.set_ylabel("p(class 1), two Dask workers")
ax.set_title("lbfgs on a Dask cluster: the same model")
fig.tight_layout()

client.close()
cluster.close()
