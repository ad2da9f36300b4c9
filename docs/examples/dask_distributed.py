"""
Training one model on a Dask cluster (not run during the build)
===============================================================

.. note::

   This example is **not executed** when the documentation is built: it
   needs :mod:`fastbp.dask`, which this version of fastbp does not ship yet,
   and a Dask cluster. Once the module is released, rename the file to
   ``plot_dask_distributed.py`` so that the gallery runs it (a
   ``LocalCluster`` of two single-threaded workers keeps it within the
   build's time budget). The API below is the one planned for
   :mod:`fastbp.dask`; check :doc:`/api/dask` for the released one.

``DaskMLPClassifier`` takes the parameters of :class:`fastbp.MLPClassifier`
plus a Dask ``client``. ``fit`` takes dask arrays or dataframes whose
partitions stay on the workers: with ``solver="lbfgs"`` each iteration sends
the weights to the workers, which compute the loss and gradient of their
rows with the compiled kernels, and sums the results (the same iterations as
a single-machine fit); with ``"sgd"`` and ``"adam"`` each worker trains an
epoch on its rows and the client averages the weights. ``predict`` returns a
dask array; ``to_local()`` the fitted plain estimator.
"""

import dask.array as da
from distributed import Client, LocalCluster

from fastbp.dask import DaskMLPClassifier

client = Client(LocalCluster(n_workers=2, threads_per_worker=1))

# 100 000 rows in 4 partitions, generated on the workers
X = da.random.random((100_000, 784), chunks=(25_000, 784)).astype("float32")
y = (X[:, 0] + X[:, 1] > 1).astype(int)

model = DaskMLPClassifier(hidden_layer_sizes=(256,), solver="lbfgs", max_iter=20,
                          random_state=0)
model.fit(X, y)
labels = model.predict(X)            # a dask array, computed block by block on the workers
print("training accuracy:", float((labels == y).mean().compute()))

local = model.to_local()             # a fitted fastbp.MLPClassifier with the same weights
print(local.predict(X[:5].compute()))
client.close()
