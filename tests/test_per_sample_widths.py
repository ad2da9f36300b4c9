"""The fused per-sample momentum epoch's forward pass groups a layer's
outputs into vectors of 64, 32 and 16 bytes or pairs, overlapping where the
width is not a multiple (csrc/fastbp_sample_impl.h, fbp_dense_in_turn): every
width, in both dtypes, gives the minibatch loop's weights at batch 1 bit for
bit where that loop's products are plain loops."""
import numpy as np
import pytest

import fastbp
from fastbp import _kernels

# every branch of fbp_dense_in_turn in float32 (16 lanes) and float64 (8):
# below a pair, pairs, 16 and 32 bytes, one or two 64-byte vectors with or
# without overlap, 2 and 4 vectors, and the rest after them
WIDTHS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 15, 16, 17, 23, 24, 31, 32, 33, 40, 47, 48,
          63, 64, 65, 72, 95, 96, 100, 129]


@pytest.fixture
def loop_products():
    """The minibatch loop's products as plain loops (no tiles, no BLAS)."""
    old = _kernels.set_blas_min_flops(1 << 40)
    yield
    _kernels.set_blas_min_flops(old)


def _fit(sizes, dtype, nesterov=False, **kw):
    rng = np.random.default_rng(sum(sizes))
    X = rng.normal(size=(6, sizes[0]))
    Y = rng.uniform(size=(6, sizes[-1]))
    net = fastbp.Network(list(sizes), activation="sigmoid", output_activation="identity",
                         dtype=dtype, seed=1)
    optimizer = fastbp.SGD(lr=0.05, momentum=0.7, nesterov=nesterov)
    net.fit(X, Y, loss="mse", optimizer=optimizer, epochs=2, batch_size=1, seed=2, **kw)
    return net, optimizer.velocity(net)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("width", WIDTHS)
def test_every_width_bit_for_bit_the_minibatch_loop(loop_products, dtype, width):
    # the width as a hidden layer and as the output; sample weights of 1 send
    # the same fit through the minibatch loop
    sizes = (3, width, (width * 7) % 13 + 1, width)
    fused, fused_velocity = _fit(sizes, dtype)
    loop, loop_velocity = _fit(sizes, dtype, sample_weight=np.ones(6))
    np.testing.assert_array_equal(fused._params, loop._params)
    np.testing.assert_array_equal(fused_velocity, loop_velocity)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("l2", [0.0, 0.01])
@pytest.mark.parametrize("sizes", [(9, 1), (5, 17, 1), (3, 1, 4, 1)])
def test_one_unit_layers_bit_for_bit_the_minibatch_loop(loop_products, dtype, nesterov, l2,
                                                         sizes):
    # a layer of one unit steps its weights in one loop over the rows
    # (fbp_column_momentum), with and without the rows' dots, L2 and Nesterov
    fused, fused_velocity = _fit(sizes, dtype, nesterov, l2=l2)
    loop, loop_velocity = _fit(sizes, dtype, nesterov, l2=l2, sample_weight=np.ones(6))
    np.testing.assert_array_equal(fused._params, loop._params)
    np.testing.assert_array_equal(fused_velocity, loop_velocity)
