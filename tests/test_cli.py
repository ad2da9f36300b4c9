"""The ``fastbp`` command line, run as a user would: in a subprocess."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

import fastbp


def run(*args, cwd, timeout=300):
    """``python -m fastbp ARGS`` in ``cwd``; the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "fastbp", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def assert_ok(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def assert_one_line_error(result, *phrases, code=2):
    """Exit ``code``, exactly one line on stderr naming the problem, no traceback."""
    lines = result.stderr.splitlines()
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    assert re.match(r"fastbp( \w+)?: error: ", lines[0]), lines[0]
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


def write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def labelled_csv(tmp_path):
    """Three numeric features and a text label that a small net can learn."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0.5, "yes", np.where(X[:, 2] > 0, "maybe", "no"))
    return write_csv(tmp_path / "labelled.csv", ["a", "b", "c", "answer"],
                     [[*np.round(x, 4), label] for x, label in zip(X, labels)])


@pytest.fixture
def regression_csv(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(240, 2))
    y = 1000 + 50 * X[:, 0] - 20 * X[:, 1]
    return write_csv(tmp_path / "prices.csv", ["size", "age", "price"],
                     [[*np.round(x, 5), round(t, 4)] for x, t in zip(X, y)])


def read_output_csv(text):
    rows = list(csv.reader(text.splitlines()))
    return rows[0], rows[1:]


# -- happy paths ---------------------------------------------------------------

def test_train_digits_reports_losses_metrics_and_time(tmp_path):
    result = run("train", "digits", "--epochs", 3, "--hidden", "32", "--save", "model.npz",
                 cwd=tmp_path)
    assert_ok(result)
    out = result.stdout
    epochs = re.findall(r"^epoch +(\d+)/3  train loss ([0-9.]+)  test loss ([0-9.]+)$", out, re.M)
    assert [int(e[0]) for e in epochs] == [1, 2, 3]
    assert float(epochs[-1][1]) < float(epochs[0][1])
    accuracy = float(re.search(r"^test  loss [0-9.e-]+  accuracy ([0-9.]+)$", out, re.M).group(1))
    assert accuracy > 0.9
    assert re.search(r"^train loss [0-9.e-]+  accuracy [0-9.]+$", out, re.M)
    assert re.search(r"^time per training sample [0-9.e+-]+ µs", out, re.M)
    assert "1348 train / 449 test rows" in out
    net = fastbp.load(tmp_path / "model.npz")  # the library reads what the CLI saved
    assert net.sizes == (64, 32, 10) and net.output_activation == "softmax"


def test_train_and_predict_text_labels(tmp_path, labelled_csv):
    result = run("train", labelled_csv, "--target", "answer", "--hidden", "16,8",
                 "--activation", "relu", "--epochs", 30, "--batch-size", 16, "--lr", 0.05,
                 "--momentum", 0.5, "--l2", 0.01, "--seed", 3, "--test-fraction", 0.2,
                 "--dtype", "float32", "--save", "m.npz", cwd=tmp_path)
    assert_ok(result)
    assert "3 classes, one-hot" in result.stdout and "192 train / 48 test rows" in result.stdout
    assert "Network([3, 16, 8, 3], activation='relu'" in result.stdout

    predicted = run("predict", "m.npz", labelled_csv, cwd=tmp_path)
    assert_ok(predicted)
    header, rows = read_output_csv(predicted.stdout)
    assert header == ["answer", "answer=maybe", "answer=no", "answer=yes"]
    assert len(rows) == 240
    with open(labelled_csv) as handle:
        truth = [row["answer"] for row in csv.DictReader(handle)]
    assert np.mean([row[0] == t for row, t in zip(rows, truth)]) > 0.85
    probabilities = np.array([[float(v) for v in row[1:]] for row in rows])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)  # softmax outputs

    to_file = run("predict", "m.npz", labelled_csv, "--out", "predictions.csv", cwd=tmp_path)
    assert_ok(to_file)
    assert to_file.stdout == ""
    assert (tmp_path / "predictions.csv").read_text().splitlines() == predicted.stdout.splitlines()


def test_predict_equals_the_library_on_the_saved_preprocessing(tmp_path, regression_csv):
    assert_ok(run("train", regression_csv, "--target", "price", "--epochs", 40, "--save",
                  "r.npz", cwd=tmp_path))
    result = run("predict", "r.npz", regression_csv, cwd=tmp_path)
    assert_ok(result)
    header, rows = read_output_csv(result.stdout)
    assert header == ["price"]
    predicted = np.array([float(row[0]) for row in rows])

    table = np.loadtxt(regression_csv, delimiter=",", skiprows=1)
    with np.load(tmp_path / "r.npz") as archive:
        meta = json.loads(str(archive["fastbp_cli"]))
    assert meta["task"] == "regression" and meta["features"] == [["size", 1], ["age", 1]]
    net = fastbp.load(tmp_path / "r.npz")
    X = (table[:, :2] - meta["x_mean"]) / meta["x_scale"]
    expected = net.predict(X)[:, 0] * meta["y_scale"][0] + meta["y_mean"][0]
    np.testing.assert_allclose(predicted, expected, rtol=1e-7)
    # in the target's own units, and close to it
    assert np.sqrt(np.mean((predicted - table[:, 2]) ** 2)) < 0.2 * np.std(table[:, 2])


def test_train_reports_regression_metrics(tmp_path, regression_csv):
    result = run("train", regression_csv, "--target", "price", "--epochs", 40, cwd=tmp_path)
    assert_ok(result)
    assert "(regression, standardized), loss mse" in result.stdout
    r2 = float(re.search(r"^test  loss \S+  rmse \S+  r2 ([0-9.-]+)$", result.stdout, re.M).group(1))
    assert r2 > 0.9


def test_train_npz_without_test_rows(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 4))
    np.savez(tmp_path / "data.npz", X=X, label=(X[:, 0] > 0).astype(int))
    result = run("train", "data.npz", "--target", "label", "--loss", "bce", "--epochs", 5,
                 "--test-fraction", 0, "--hidden", "none", cwd=tmp_path)
    assert_ok(result)
    assert "100 train / 0 test rows, 4 features" in result.stdout
    assert "Network([4, 2]" in result.stdout and "output_activation='sigmoid'" in result.stdout
    assert len(re.findall(r"^epoch +\d+/5  train loss [0-9.]+$", result.stdout, re.M)) == 5
    assert "test  loss" not in result.stdout


def test_train_plots_the_loss_curve(tmp_path):
    pytest.importorskip("matplotlib")
    result = run("train", "digits", "--epochs", 4, "--plot", "curve.png", cwd=tmp_path)
    assert_ok(result)
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_goes_to_stderr(tmp_path):
    result = run("train", "digits", "--epochs", 2, "--progress", cwd=tmp_path)
    assert_ok(result)
    assert re.search(r"train: 100%.*2/2.*loss=", result.stderr)
    assert len(re.findall(r"^epoch ", result.stdout, re.M)) == 2
    quiet = run("train", "digits", "--epochs", 2, "--no-progress", cwd=tmp_path)
    assert_ok(quiet)
    assert quiet.stderr == ""


def test_gradcheck_random_network(tmp_path):
    result = run("gradcheck", "--sizes", "5,4,3", "--loss", "cross_entropy", "--rows", 6,
                 cwd=tmp_path)
    assert_ok(result)
    errors = re.findall(r"max relative error (\S+)  \(tolerance (\S+)\)  ok$", result.stdout, re.M)
    assert len(errors) == 3  # reference, graph engine, finite differences
    assert max(float(errors[0][0]), float(errors[1][0])) < 1e-12
    assert float(errors[2][0]) < 1e-6
    assert "graph engine" in result.stdout


def test_gradcheck_saved_model_and_data(tmp_path, labelled_csv):
    assert_ok(run("train", labelled_csv, "--target", "answer", "--epochs", 2, "--save", "m.npz",
                  cwd=tmp_path))
    result = run("gradcheck", "m.npz", labelled_csv, "--rows", 5, cwd=tmp_path)
    assert_ok(result)
    assert "loss cross_entropy" in result.stdout and "5 rows of" in result.stdout
    assert result.stdout.count(" ok\n") == 3

    write_csv(tmp_path / "new_label.csv", ["a", "b", "c", "answer"], [[0, 0, 0, "perhaps"]])
    assert_one_line_error(run("gradcheck", "m.npz", "new_label.csv", cwd=tmp_path),
                          "label 'perhaps', which the model was not trained on")


def test_bench_runs_compare_py_of_the_checkout(tmp_path):
    script = tmp_path / "bench" / "compare.py"
    script.parent.mkdir()
    script.write_text("import os, sys\nprint('ARGS', sys.argv[1:], os.getcwd())\nsys.exit(3)\n")
    (tmp_path / "sub").mkdir()
    result = run("bench", "--quick", "--threads", 2, cwd=tmp_path / "sub")
    assert result.returncode == 3  # compare.py's own exit code
    assert f"ARGS ['--quick', '--threads', '2'] {tmp_path}" in result.stdout


def test_bench_without_a_checkout_is_a_clear_error(tmp_path):
    assert_one_line_error(run("bench", "--quick", cwd=tmp_path), "bench/compare.py not found")


def test_console_script_is_installed(tmp_path):
    script = shutil.which("fastbp", path=sysconfig.get_path("scripts"))
    if script is None:
        pytest.skip("the fastbp console script is not installed (tests run from the source tree)")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"fastbp {fastbp.__version__}"


def test_help_lists_the_commands(tmp_path):
    result = run("--help", cwd=tmp_path)
    assert_ok(result)
    for command in ("train", "predict", "gradcheck", "bench"):
        assert command in result.stdout


# -- bad input: one line on stderr, exit code 2 ---------------------------------

BAD_FILES = {
    "empty.csv": "",
    "blank.csv": "\n  \n",
    "header.csv": "a,b,y\n",
    "text.csv": "a,b,y\n1,2,0\n3,oops,1\n",
    "gap.csv": "a,b,y\n1,,0\n2,3,1\n",
    "nan.csv": "a,b,y\n1,nan,0\n2,3,1\n",
    "short.csv": "a,b,y\n1,2,0\n1,2\n",
    "noname.csv": "a,,y\n1,2,0\n",
    "twice.csv": "a,a,y\n1,2,0\n",
    "one_class.csv": "a,y\n1,cat\n2,cat\n",
    "no_label.csv": "a,y\n1,cat\n2,\n3,dog\n",
    "nan_label.csv": "a,y\n1,cat\n2,NaN\n3,dog\n",
    "ok.csv": "a,b,y\n1,2,0\n2,3,1\n3,1,0\n4,1,1\n",
    "notzip.npz": "hello",
}


@pytest.fixture
def bad_files(tmp_path):
    for name, text in BAD_FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81 not text")
    np.savez(tmp_path / "ragged.npz", X=np.ones((5, 2)), y=np.ones(4))
    np.savez(tmp_path / "cube.npz", X=np.ones((5, 2, 2)), y=np.ones(5))
    return tmp_path


@pytest.mark.parametrize("args,phrases", [
    (["train", "missing.csv", "--target", "y"], ["missing.csv: no such file"]),
    (["train", "ok.csv", "--target", "price"], ["unknown column 'price'", "'a', 'b', 'y'"]),
    (["train", "ok.csv"], ["--target"]),
    (["train", "text.csv", "--target", "y"], ["line 3, column 'b' holds 'oops', not a finite number"]),
    (["train", "gap.csv", "--target", "y"], ["line 2, column 'b' is empty"]),
    (["train", "nan.csv", "--target", "y"], ["line 2, column 'b' holds 'nan'"]),
    (["train", "empty.csv", "--target", "y"], ["empty.csv: the file is empty"]),
    (["train", "blank.csv", "--target", "y"], ["blank.csv: the file is empty"]),
    (["train", "header.csv", "--target", "y"], ["header but no data rows"]),
    (["train", "short.csv", "--target", "y"], ["line 3 has 2 fields, the header has 3"]),
    (["train", "noname.csv", "--target", "y"], ["column 2 of the header", "no name"]),
    (["train", "twice.csv", "--target", "y"], ["names column 'a' twice"]),
    (["train", "one_class.csv", "--target", "y"], ["single class"]),
    (["train", "no_label.csv", "--target", "y"], ["data row 2 has no valid target 'y': ''"]),
    (["train", "nan_label.csv", "--target", "y"], ["data row 2 has no valid target 'y': 'NaN'"]),
    (["train", "binary.csv", "--target", "y"], ["not UTF-8 text"]),
    (["train", "notzip.npz", "--target", "y"], ["not an .npz file"]),
    (["train", "ragged.npz", "--target", "y"], ["array 'y' has 4 rows"]),
    (["train", "cube.npz", "--target", "y"], ["array 'X' is 3-D"]),
    (["train", ".", "--target", "y"], ["is a directory"]),
    (["train", "ok.csv", "--target", "y", "--no-such-option"], ["unrecognized arguments: --no-such-option"]),
    (["train", "ok.csv", "--target", "y", "--loss", "hinge"], ["argument --loss: invalid choice: 'hinge'"]),
    (["train", "ok.csv", "--target", "y", "--activation", "swish"], ["argument --activation"]),
    (["fly"], ["invalid choice: 'fly'"]),
    (["train"], ["required: DATA"]),
    (["train", "ok.csv", "--target", "y", "--hidden", "0"], ["--hidden", "got 0"]),
    (["train", "ok.csv", "--target", "y", "--hidden", "64,-3"], ["--hidden", "got -3"]),
    (["train", "ok.csv", "--target", "y", "--hidden", "3000000000"], ["--hidden", "between 1 and 2147483647"]),
    (["train", "ok.csv", "--target", "y", "--hidden", "wide"], ["--hidden", "'wide'"]),
    (["train", "ok.csv", "--target", "y", "--batch-size", "0"], ["--batch-size: must be at least 1"]),
    (["train", "ok.csv", "--target", "y", "--epochs", "-1"], ["--epochs: must be at least 1"]),
    (["train", "ok.csv", "--target", "y", "--epochs", "2.5"], ["--epochs: expected an integer"]),
    (["train", "ok.csv", "--target", "y", "--lr", "0"], ["--lr: must be > 0"]),
    (["train", "ok.csv", "--target", "y", "--lr", "inf"], ["--lr: must be finite"]),
    (["train", "ok.csv", "--target", "y", "--momentum", "1"], ["--momentum: must be < 1"]),
    (["train", "ok.csv", "--target", "y", "--test-fraction", "1"], ["--test-fraction: must be < 1"]),
    (["train", "ok.csv", "--target", "y", "--l2", "-1"], ["--l2: must be >= 0"]),
    (["train", "ok.csv", "--target", "y", "--dtype", "float16"], ["--dtype"]),
    (["train", "ok.csv", "--target", "y", "--task", "regression", "--loss", "bce"],
     ["--loss bce needs class labels"]),
    (["train", "ok.csv", "--target", "y", "--save", "nowhere/m.npz"], ["--save", "does not exist"]),
    (["predict", "missing.npz", "ok.csv"], ["missing.npz: no such model file"]),
    (["predict", "ok.csv", "ok.csv"], ["ok.csv: not a fastbp model"]),
    (["gradcheck", "--sizes", "4"], ["--sizes", "at least an input and an output width"]),
    (["gradcheck", "--rows", "0"], ["--rows: must be at least 1"]),
])
def test_bad_input_is_one_line_and_exit_2(bad_files, args, phrases):
    assert_one_line_error(run(*args, cwd=bad_files), *phrases)


def test_network_too_large_for_memory(tmp_path):
    if not hasattr(os, "sysconf"):
        pytest.skip("no sysconf to measure the memory")
    write_csv(tmp_path / "d.csv", ["a", "y"], [[1, 0], [2, 1], [3, 0], [4, 1]])
    result = run("train", "d.csv", "--target", "y", "--hidden", "200000,200000", cwd=tmp_path)
    assert_one_line_error(result, "too large", "GiB")


def test_predict_needs_the_models_columns(tmp_path, labelled_csv):
    assert_ok(run("train", labelled_csv, "--target", "answer", "--epochs", 1, "--save", "m.npz",
                  cwd=tmp_path))
    write_csv(tmp_path / "other.csv", ["a", "c"], [[1, 2]])
    assert_one_line_error(run("predict", "m.npz", "other.csv", cwd=tmp_path),
                          "unknown column 'b'", "a feature of the model")


def test_predict_plain_network_checks_the_width(tmp_path):
    fastbp.Network([3, 2], seed=0).save(tmp_path / "plain.npz")
    write_csv(tmp_path / "two.csv", ["a", "b"], [[1, 2], [3, 4]])
    assert_one_line_error(run("predict", "plain.npz", "two.csv", cwd=tmp_path),
                          "2 columns, but the model takes 3 inputs")
    write_csv(tmp_path / "three.csv", ["a", "b", "c"], [[1, 2, 3], [3, 4, 5]])
    result = run("predict", "plain.npz", "three.csv", cwd=tmp_path)
    assert_ok(result)
    header, rows = read_output_csv(result.stdout)
    net = fastbp.load(tmp_path / "plain.npz")
    assert header == ["y0", "y1"]
    np.testing.assert_allclose(np.array(rows, dtype=float),
                               net.predict([[1, 2, 3], [3, 4, 5]]), rtol=1e-7)


def test_divergence_is_one_line_and_exit_1(tmp_path, regression_csv):
    result = run("train", regression_csv, "--target", "price", "--lr", "1e30", "--epochs", 3,
                 cwd=tmp_path)
    assert_one_line_error(result, "training diverged", code=1)



# -- the package's parts, in process ----------------------------------------------

def test_read_csv_columns_blank_lines_and_gzip(tmp_path):
    import gzip

    from fastbp.cli.tables import read_csv

    text = "\ufeffa, b ,label\n1,2.5,cat\n\n3,-4e2,dog\n"
    (tmp_path / "t.csv").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "t.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write(text)
    for name in ("t.csv", "t.csv.gz"):
        table = read_csv(str(tmp_path / name))
        assert table.names() == ["a", "b", "label"] and table.n_rows == 2
        a, b, label = table.columns
        assert a.numeric and b.numeric and not label.numeric
        np.testing.assert_array_equal(b.values, [2.5, -400.0])
        assert list(label.values) == ["cat", "dog"]
        assert label.bad == ("line 2", "cat")  # the line in the file, blank lines counted


def test_read_npz_widths_text_and_the_model_entry(tmp_path):
    from fastbp.cli.model import META_KEY
    from fastbp.cli.tables import read_npz

    np.savez(tmp_path / "d.npz", X=np.arange(6).reshape(3, 2), s=np.array([b"x", b"y", b"z"]),
             **{META_KEY: np.array("{}")})
    table = read_npz(str(tmp_path / "d.npz"))
    assert table.names() == ["X", "s"]
    assert table.column("X").width == 2 and table.column("X").values.dtype == np.float64
    assert list(table.column("s").values) == ["x", "y", "z"]


def test_encode_target_decides_the_task_and_orders_the_classes():
    from fastbp.cli.tables import Column, Table, encode_target, one_hot_as_trained

    table = Table("t", [Column("k", np.array([3.0, 1.0, 3.0, 2.0]), True),
                        Column("v", np.array([0.5, 1.0, 1.5, 2.0]), True),
                        Column("s", np.array(["b", "a", "b", "a"], dtype=object), False,
                               ("line 2", "b"))])
    task, Y, classes = encode_target(table, "k", "auto", None)
    assert task == "classification" and classes == [1, 2, 3]
    np.testing.assert_array_equal(Y.argmax(1), [2, 0, 2, 1])
    task, Y, classes = encode_target(table, "v", "auto", None)
    assert task == "regression" and classes is None and Y.shape == (4, 1)
    assert encode_target(table, "k", "regression", None)[0] == "regression"
    task, Y, classes = encode_target(table, "s", "auto", None)
    assert classes == ["a", "b"]
    np.testing.assert_array_equal(one_hot_as_trained(table, "s", ["b", "a"]).argmax(1),
                                  [0, 1, 0, 1])


def test_model_metadata_round_trip(tmp_path):
    from fastbp.cli.model import ModelMeta, load_model, save_model

    net = fastbp.Network([2, 3], seed=0)
    meta = ModelMeta(target="y", task="regression", loss="mse", features=[["a", 2]],
                     classes=None, x_mean=[1.0, 2.0], x_scale=[2.0, 4.0], y_mean=[0.0] * 3,
                     y_scale=[1.0] * 3)
    save_model(net, meta, str(tmp_path / "m.npz"))
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left
    loaded, loaded_meta = load_model(str(tmp_path / "m.npz"))
    assert loaded_meta == meta
    np.testing.assert_array_equal(loaded.predict([[1, 2]]), net.predict([[1, 2]]))
    np.testing.assert_array_equal(meta.inputs(np.array([[3.0, 6.0]])), [[1.0, 1.0]])


@pytest.mark.parametrize("entry", ["[1]", '{"version": 1, "target": "y"}', "{not json"])
def test_damaged_model_metadata_is_one_line_and_exit_2(tmp_path, entry):
    fastbp.Network([1, 2], seed=0).save(tmp_path / "plain.npz")
    with np.load(tmp_path / "plain.npz") as archive:
        entries = dict(archive)
    np.savez(tmp_path / "m.npz", fastbp_cli=np.array(entry), **entries)
    write_csv(tmp_path / "d.csv", ["a"], [[1], [2]])
    assert_one_line_error(run("predict", "m.npz", "d.csv", cwd=tmp_path),
                          "m.npz: damaged fastbp_cli entry")


def test_option_types_use_the_library_checks():
    import argparse

    from fastbp.cli.options import float_in, hidden_widths, int_at_least

    assert int_at_least(1, 3)("3") == 3
    assert float_in(0, 1, strict_max=True)("0") == 0.0
    assert hidden_widths(" none ") == [] and hidden_widths("4, 2") == [4, 2]
    for parse, text, phrase in [(int_at_least(1, 3), "4", "must be at most 3"),
                                (float_in(0, strict=True), "0", "must be > 0"),
                                (float_in(0), "nan", "must be finite"),
                                (float_in(0), "x", "expected a number, got 'x'")]:
        with pytest.raises(argparse.ArgumentTypeError, match=phrase):
            parse(text)
