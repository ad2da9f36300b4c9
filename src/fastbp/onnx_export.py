"""ONNX export: a trained network as a graph any ONNX runtime can run.

``to_onnx`` writes :class:`~fastbp.Network` and the scikit-learn estimators
with the ``onnx`` package (``pip install fastbp[onnx]``); each layer is
MatMul, Add and its activation (one operator, such as Relu, Softmax or
LeakyRelu; a few for the others, such as SiLU's Sigmoid then Mul, with
operators onnxruntime runs in float64 too; nothing for identity), in the
network's dtype. ``register_skl2onnx`` teaches skl2onnx the
estimators, so scikit-learn pipelines that hold them convert with
``skl2onnx.to_onnx``.

Outputs, named as skl2onnx names them:

- ``Network``: ``output``, what :meth:`Network.predict` returns;
- ``MLPRegressor``: ``variable``, shape (n, n_outputs) (with ``loss="poisson"``
  the exp of the network's output, as ``predict``);
- ``MLPClassifier``: ``label`` (what ``predict`` returns; a 0/1 matrix for
  multilabel targets) and ``probabilities`` (``predict_proba``).
"""
from __future__ import annotations

import numpy as np

#: opset 17: Softmax over the last axis only, supported by onnxruntime >= 1.13
#: (CastLike, which puts a constant in the network's dtype, is opset 15)
OPSET = 17


def _node(op_type: str, **attributes):
    """The row of an activation that is one ONNX operator: z = op_type(a)."""
    def add(add_node, a: str, z: str) -> None:
        add_node(op_type, [a], [z], **attributes)
    return add


def _constant(add_node, name: str, value: float, like: str) -> str:
    """A scalar tensor ``name`` holding ``value`` in ``like``'s dtype: a
    float64 Constant, then CastLike, so one graph serves float32 and float64."""
    from onnx import numpy_helper
    add_node("Constant", [], [f"{name}_64"], value=numpy_helper.from_array(np.array(value)))
    add_node("CastLike", [f"{name}_64", like], [name])
    return name


def _gelu(add_node, a: str, z: str) -> None:
    """z = a · ½(1 + erf(a/√2)), PyTorch's GELU (opset 20's Gelu is newer than
    OPSET). onnxruntime has no float64 Erf: erf runs in float32, so a float64
    network's export agrees with predict to about 1e-7 there."""
    add_node("Mul", [a, _constant(add_node, f"{z}_scale", 0.5 ** 0.5, a)], [f"{z}_scaled"])
    add_node("Cast", [f"{z}_scaled"], [f"{z}_scaled32"], to=1)  # float32
    add_node("Erf", [f"{z}_scaled32"], [f"{z}_erf32"])
    add_node("CastLike", [f"{z}_erf32", a], [f"{z}_erf"])
    add_node("Add", [f"{z}_erf", _constant(add_node, f"{z}_one", 1.0, a)], [f"{z}_sum"])
    add_node("Mul", [a, f"{z}_sum"], [f"{z}_twice"])
    add_node("Mul", [f"{z}_twice", _constant(add_node, f"{z}_half", 0.5, a)], [z])


def _silu(add_node, a: str, z: str) -> None:
    """z = a · σ(a)."""
    add_node("Sigmoid", [a], [f"{z}_sigmoid"])
    add_node("Mul", [a, f"{z}_sigmoid"], [z])


def _positive(add_node, a: str, z: str) -> str:
    """The boolean a > 0."""
    add_node("Greater", [a, _constant(add_node, f"{z}_zero", 0.0, a)], [f"{z}_positive"])
    return f"{z}_positive"


# Elu, Softplus and Softsign are written with the operators onnxruntime runs
# in float64 too (it has them in float32 only)

def _elu(add_node, a: str, z: str) -> None:
    """z = a above 0, else e^a − 1 (α = 1)."""
    add_node("Exp", [a], [f"{z}_exp"])
    add_node("Sub", [f"{z}_exp", _constant(add_node, f"{z}_one", 1.0, a)], [f"{z}_below"])
    add_node("Where", [_positive(add_node, a, z), a, f"{z}_below"], [z])


def _softplus(add_node, a: str, z: str) -> None:
    """z = max(a, 0) + log(1 + e^−|a|), which cannot overflow, and a itself
    above PyTorch's threshold 20."""
    add_node("Abs", [a], [f"{z}_size"])
    add_node("Neg", [f"{z}_size"], [f"{z}_minus"])
    add_node("Exp", [f"{z}_minus"], [f"{z}_exp"])
    add_node("Add", [f"{z}_exp", _constant(add_node, f"{z}_one", 1.0, a)], [f"{z}_sum"])
    add_node("Log", [f"{z}_sum"], [f"{z}_log"])
    add_node("Relu", [a], [f"{z}_relu"])
    add_node("Add", [f"{z}_relu", f"{z}_log"], [f"{z}_softplus"])
    add_node("Greater", [a, _constant(add_node, f"{z}_threshold", 20.0, a)], [f"{z}_above"])
    add_node("Where", [f"{z}_above", a, f"{z}_softplus"], [z])


def _softsign(add_node, a: str, z: str) -> None:
    """z = a / (1 + |a|)."""
    add_node("Abs", [a], [f"{z}_size"])
    add_node("Add", [f"{z}_size", _constant(add_node, f"{z}_one", 1.0, a)], [f"{z}_sum"])
    add_node("Div", [a, f"{z}_sum"], [z])


def _elliot(add_node, a: str, z: str) -> None:
    """z = ½ · softsign(a/2) + ½, FANN's FANN_ELLIOT at its steepness ½."""
    half = _constant(add_node, f"{z}_half", 0.5, a)
    add_node("Mul", [a, half], [f"{z}_steep"])
    _softsign(add_node, f"{z}_steep", f"{z}_softsign")
    add_node("Mul", [f"{z}_softsign", half], [f"{z}_scaled"])
    add_node("Add", [f"{z}_scaled", half], [z])


#: activation name -> how its layer's z is made from a: ``add(add_node, a, z)``
#: writes the nodes (one operator, or several for an activation ONNX lacks);
#: None passes a on (identity). A row per name of ``fastbp.ACTIVATIONS``.
ACTIVATION_NODES = {
    "identity": None,
    "sigmoid": _node("Sigmoid"),
    "tanh": _node("Tanh"),
    "relu": _node("Relu"),
    "softmax": _node("Softmax", axis=-1),
    "leaky_relu": _node("LeakyRelu", alpha=0.01),
    "elu": _elu,
    "gelu": _gelu,
    "silu": _silu,
    "softplus": _softplus,
    "softsign": _softsign,
    "elliot": _elliot,
}


def _onnx():
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("ONNX export needs the onnx package: pip install fastbp[onnx]") from exc
    return onnx


def _network_of(model):
    """(Network, kind) for a Network or a fitted fastbp estimator."""
    from .network import Network
    if isinstance(model, Network):
        return model, "network"
    from . import estimators
    if isinstance(model, (estimators.MLPClassifier, estimators.MLPRegressor)):
        if not hasattr(model, "network_"):  # NotFittedError is an AttributeError
            raise ValueError(f"this {type(model).__name__} is not fitted yet: call fit first")
        return model.network_, ("classifier" if isinstance(model, estimators.MLPClassifier)
                                else "regressor")
    raise TypeError("to_onnx takes a fastbp.Network, MLPClassifier or MLPRegressor, "
                    f"got {type(model).__name__}")


def _layer_nodes(network, input_name: str, add_initializer, add_node, prefix: str) -> str:
    """Add the network's layers after ``input_name``; return the output's name.

    ``add_initializer(name, array)`` and ``add_node(op_type, inputs, outputs,
    **attributes)`` write into a graph: onnx's helpers or skl2onnx's container.
    """
    current = input_name
    activations = list(network.activations) + [network.output_activation]
    layers = zip(network.weights, network.biases)
    for index, ((W, b), activation) in enumerate(zip(layers, activations)):
        W_name, b_name = f"{prefix}W{index}", f"{prefix}b{index}"
        add_initializer(W_name, np.array(W))
        add_initializer(b_name, np.array(b))
        product, a = f"{prefix}xW{index}", f"{prefix}a{index}"
        add_node("MatMul", [current, W_name], [product])
        add_node("Add", [product, b_name], [a])
        add = ACTIVATION_NODES[activation]
        if add is None:
            current = a
            continue
        z = f"{prefix}z{index}"
        add(add_node, a, z)
        current = z
    return current


def _is_multilabel(estimator) -> bool:
    """Whether a fitted MLPClassifier predicts several labels a row: one
    logistic output per label (a binary one has a single output)."""
    return estimator.out_activation_ == "logistic" and estimator.n_outputs_ > 1


def _classifier_nodes(estimator, scores: str, label: str, probabilities: str,
                      add_initializer, add_node, prefix: str) -> None:
    """``label`` and ``probabilities`` from the output layer's ``scores``, as
    ``predict`` and ``predict_proba`` derive them."""
    classes = np.asarray(estimator.classes_)
    multilabel = _is_multilabel(estimator)
    dtype = estimator.network_.dtype
    half = f"{prefix}half"
    if multilabel:  # one sigmoid a label: label i is on where p_i > 0.5
        add_initializer(half, np.array(0.5, dtype))
        add_node("Identity", [scores], [probabilities])
        add_node("Greater", [scores, half], [f"{prefix}on"])
        add_node("Cast", [f"{prefix}on"], [label], to=7)  # int64
        return
    if estimator.n_outputs_ == 1:  # binary: one sigmoid unit, p(class 1)
        one = f"{prefix}one"
        add_initializer(one, np.array(1.0, dtype))
        add_node("Sub", [one, scores], [f"{prefix}p0"])
        add_node("Concat", [f"{prefix}p0", scores], [probabilities], axis=1)
    else:
        add_node("Identity", [scores], [probabilities])
    # the first largest probability, as LabelBinarizer.inverse_transform picks
    add_node("ArgMax", [probabilities], [f"{prefix}index"], axis=1, keepdims=0)
    if classes.dtype.kind in "iub":
        add_initializer(f"{prefix}classes", classes.astype(np.int64))
    else:
        add_initializer(f"{prefix}classes", classes.astype(str).astype(object))
    add_node("Gather", [f"{prefix}classes", f"{prefix}index"], [label], axis=0)


def _log_link(model, kind: str, scores: str, add_node, prefix: str) -> str:
    """A Poisson regressor's network ends in the log of the mean: add its exp."""
    if kind != "regressor" or getattr(model, "out_activation_", None) != "exp":
        return scores
    add_node("Exp", [scores], [f"{prefix}mean"])
    return f"{prefix}mean"


def to_onnx(model, path=None, *, name: str = "fastbp"):
    """Export a network or a fitted estimator as an ONNX model.

    Parameters
    ----------
    model : Network, MLPClassifier or MLPRegressor
        A fitted estimator, or a network (its current weights).
    path : str or path-like, optional
        Where to save the model; it is returned either way.
    name : str, default="fastbp"
        The graph's name.

    Returns
    -------
    onnx.ModelProto
        Input ``X`` of shape (n, sizes[0]) in the network's dtype; outputs
        as the module docstring lists them. Class labels that are not
        integers come out as strings.

    Examples
    --------
    >>> import numpy as np, fastbp, onnxruntime
    >>> net = fastbp.Network([4, 8, 3], activation="relu", output_activation="softmax", seed=0)
    >>> model = fastbp.to_onnx(net)
    >>> session = onnxruntime.InferenceSession(model.SerializeToString())
    >>> X = np.ones((2, 4))
    >>> bool(np.allclose(session.run(None, {"X": X})[0], net.predict(X), rtol=1e-12))
    True
    """
    onnx = _onnx()
    from onnx import helper, numpy_helper
    network, kind = _network_of(model)
    element = helper.np_dtype_to_tensor_dtype(network.dtype)
    initializers, nodes = [], []

    def add_initializer(tensor_name, array):
        initializers.append(numpy_helper.from_array(array, tensor_name))

    def add_node(op_type, inputs, outputs, **attributes):
        nodes.append(helper.make_node(op_type, inputs, outputs, name=outputs[0], **attributes))

    n_in, n_out = network.sizes[0], network.sizes[-1]
    scores = _layer_nodes(network, "X", add_initializer, add_node, "")
    if kind == "classifier":
        n_classes = 2 if model.n_outputs_ == 1 else n_out
        multilabel = _is_multilabel(model)
        _classifier_nodes(model, scores, "label", "probabilities", add_initializer, add_node,
                          "")
        label_type = (onnx.TensorProto.INT64 if multilabel or
                      np.asarray(model.classes_).dtype.kind in "iub" else onnx.TensorProto.STRING)
        outputs = [helper.make_tensor_value_info("label", label_type,
                                                 [None, n_out] if multilabel else [None]),
                   helper.make_tensor_value_info("probabilities", element, [None, n_classes])]
    else:
        output = "output" if kind == "network" else "variable"
        scores = _log_link(model, kind, scores, add_node, "")
        add_node("Identity", [scores], [output])
        outputs = [helper.make_tensor_value_info(output, element, [None, n_out])]
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("X", element, [None, n_in])],
                              outputs, initializers)
    model_proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                    producer_name="fastbp")
    onnx.checker.check_model(model_proto)
    if path is not None:
        onnx.save(model_proto, path)
    return model_proto


def register_skl2onnx() -> None:
    """Register fastbp's estimators with skl2onnx, so that
    ``skl2onnx.to_onnx(pipeline, X)`` converts pipelines that hold them.

    Classifiers take skl2onnx's ``zipmap`` option (pass
    ``options={"zipmap": False}`` for a probability matrix).

    Examples
    --------
    >>> import fastbp
    >>> fastbp.register_skl2onnx()
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                  calculate_linear_regressor_output_shapes)
    from . import estimators
    update_registered_converter(estimators.MLPClassifier, "FastbpMLPClassifier",
                                calculate_linear_classifier_output_shapes, _convert_classifier,
                                options={"zipmap": [True, False, "columns"],
                                         "nocl": [True, False]})
    update_registered_converter(estimators.MLPRegressor, "FastbpMLPRegressor",
                                calculate_linear_regressor_output_shapes, _convert_regressor)


def _container_writers(scope, operator, container):
    """add_initializer and add_node over skl2onnx's container, with names
    unique in the pipeline's scope."""
    from onnx import helper
    network = operator.raw_operator.network_
    element = helper.np_dtype_to_tensor_dtype(network.dtype)
    prefix = scope.get_unique_variable_name(operator.full_name) + "_"

    def add_initializer(tensor_name, array):
        kind = (helper.np_dtype_to_tensor_dtype(array.dtype) if array.dtype != object
                else 8)  # STRING
        container.add_initializer(tensor_name, kind, list(array.shape), array.ravel().tolist())

    def add_node(op_type, inputs, outputs, **attributes):
        container.add_node(op_type, inputs, outputs, name=scope.get_unique_operator_name(op_type),
                           **attributes)
    return network, element, prefix, add_initializer, add_node


def _cast_input(operator, network, element, prefix, add_node) -> str:
    """The pipeline's input to this estimator, in the network's dtype."""
    name = operator.inputs[0].full_name
    cast = f"{prefix}X"
    add_node("Cast", [name], [cast], to=element)
    return cast


def _convert_classifier(scope, operator, container):
    estimator = operator.raw_operator
    if _is_multilabel(estimator):
        raise NotImplementedError("skl2onnx's classifier outputs take one label a row; "
                                  "export a multilabel MLPClassifier with fastbp.to_onnx")
    network, element, prefix, add_initializer, add_node = _container_writers(
        scope, operator, container)
    x = _cast_input(operator, network, element, prefix, add_node)
    scores = _layer_nodes(network, x, add_initializer, add_node, prefix)
    probabilities = f"{prefix}probabilities"
    _classifier_nodes(estimator, scores, operator.outputs[0].full_name, probabilities,
                      add_initializer, add_node, prefix)
    # skl2onnx declares the probabilities in its float type; cast where they differ
    add_node("Cast", [probabilities], [operator.outputs[1].full_name],
             to=operator.outputs[1].type.to_onnx_type().tensor_type.elem_type)


def _convert_regressor(scope, operator, container):
    network, element, prefix, add_initializer, add_node = _container_writers(
        scope, operator, container)
    x = _cast_input(operator, network, element, prefix, add_node)
    scores = _layer_nodes(network, x, add_initializer, add_node, prefix)
    scores = _log_link(operator.raw_operator, "regressor", scores, add_node, prefix)
    add_node("Cast", [scores], [operator.outputs[0].full_name],
             to=operator.outputs[0].type.to_onnx_type().tensor_type.elem_type)
