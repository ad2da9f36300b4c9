"""fastbp.plot_history: one call from a fit's history to a labelled figure."""
import sys
import warnings

import numpy as np
import pytest

import fastbp

matplotlib = pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_history_of_a_fit_to_png(tmp_path):
    X, Y = fastbp.load_digits()
    net = fastbp.Network([64, 16, 10], output_activation="softmax", seed=0)
    history = net.fit(X[:300], Y[:300], loss="cross_entropy", epochs=4, seed=0)
    history["val_loss"] = [net.loss(X[300:400], Y[300:400], loss="cross_entropy")] * 4
    figure = fastbp.plot_history(history, tmp_path / "loss.png", loss="cross_entropy",
                                 title="digits")
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG_MAGIC
    ax = figure.axes[0]
    assert ax.get_xlabel().startswith("epoch")
    assert "cross-entropy" in ax.get_ylabel() and "per sample" in ax.get_ylabel()
    assert ax.get_title() == "digits"
    train, validation = ax.get_lines()
    np.testing.assert_allclose(train.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(train.get_ydata(), history["loss"])
    np.testing.assert_allclose(validation.get_ydata(), history["val_loss"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "training (mean over the epoch)", "validation (after the epoch)"]


def test_plain_list_and_loss_curve_attribute(tmp_path):
    figure = fastbp.plot_history([0.5, 0.4, 0.35])
    assert len(figure.axes[0].get_lines()) == 1
    assert figure.axes[0].get_ylabel() == "loss per sample"

    class Estimator:
        loss_curve_ = [1.0, 0.5]
        validation_loss_curve_ = [1.1, 0.7]

    figure = fastbp.plot_history(Estimator(), tmp_path / "curve.svg", loss="mse")
    assert len(figure.axes[0].get_lines()) == 2
    assert (tmp_path / "curve.svg").read_text().lstrip().startswith("<?xml")


def test_estimator_validation_scores_on_a_second_axis(tmp_path):
    class Classifier:
        classes_ = [0, 1]
        loss_curve_ = [0.7, 0.5, 0.4]
        validation_scores_ = [0.6, 0.8, 0.85]

    figure = fastbp.plot_history(Classifier(), tmp_path / "c.png", loss="cross_entropy")
    left, right = figure.axes
    np.testing.assert_allclose(right.get_lines()[0].get_ydata(), [0.6, 0.8, 0.85])
    assert "accuracy" in right.get_ylabel()
    assert [t.get_text() for t in right.get_legend().get_texts()] == [
        "training (mean over the epoch)", "validation score (accuracy)"]


def test_fastbp_estimator_history():
    pytest.importorskip("sklearn")
    X, labels = fastbp.load_digits(one_hot=False)
    model = fastbp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, early_stopping=True,
                                 n_iter_no_change=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # five iterations do not converge
        model.fit(X[:500], labels[:500])
    figure = fastbp.plot_history(model, loss="cross_entropy")
    train = figure.axes[0].get_lines()[0]
    np.testing.assert_allclose(train.get_ydata(), model.loss_curve_)
    assert len(figure.axes) == 2


def test_log_scale_when_the_loss_spans_decades():
    assert fastbp.plot_history([10.0, 1.0, 0.01]).axes[0].get_yscale() == "log"
    assert fastbp.plot_history([1.0, 0.9, 0.8]).axes[0].get_yscale() == "linear"
    assert fastbp.plot_history([1.0, 0.9], log_scale=True).axes[0].get_yscale() == "log"


def test_draws_into_given_axes():
    from matplotlib.figure import Figure

    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert fastbp.plot_history({"loss": [1.0, 0.5]}, ax=right) is figure
    assert len(right.get_lines()) == 1 and len(left.get_lines()) == 0


@pytest.mark.parametrize("history,error,match", [
    ([], ValueError, "empty"),
    ({"seconds": [1.0]}, ValueError, "no 'loss' entry"),
    ({"loss": [1.0, 0.5], "val_loss": [1.0]}, ValueError, "1 epochs, the training curve 2"),
    ([1.0, "x"], TypeError, r"history\[1\] is not a number"),
    ("loss", TypeError, "sequence of numbers"),
    (3.0, TypeError, "sequence of numbers"),
])
def test_bad_histories_are_named(history, error, match):
    with pytest.raises(error, match=match):
        fastbp.plot_history(history)


def test_unknown_loss_name():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        fastbp.plot_history([1.0], loss="hinge")


def test_without_matplotlib_the_error_says_what_to_install(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(ImportError, match=r'pip install "fastbp\[plot\]"'):
        fastbp.plot_history([1.0, 0.5])
