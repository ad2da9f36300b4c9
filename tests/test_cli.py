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
    epochs = re.findall(r"^epoch +(\d+)/3  train loss ([0-9.]+)  val loss ([0-9.]+)  "
                        r"test loss ([0-9.]+)(  \*)?$", out, re.M)
    assert [int(e[0]) for e in epochs] == [1, 2, 3]
    assert float(epochs[-1][1]) < float(epochs[0][1])
    accuracy = float(re.search(r"^test  cross_entropy loss [0-9.e-]+ \(nats a row\)  "
                               r"accuracy ([0-9.]+) \(\d+/449 rows right\)$", out, re.M).group(1))
    assert accuracy > 0.9
    assert re.search(r"^train cross_entropy loss [0-9.e-]+ \(nats a row\)  accuracy [0-9.]+ ", out,
                     re.M)
    assert re.search(r"^time per training sample [0-9.e+-]+ µs", out, re.M)
    assert "1213 train / 135 validation / 449 test rows" in out
    assert "target 'digit': classification (integer codes 0..9)" in out
    net = fastbp.load(tmp_path / "model.npz")  # the library reads what the CLI saved
    assert net.sizes == (64, 32, 10) and net.output_activation == "softmax"


def test_train_and_predict_text_labels(tmp_path, labelled_csv):
    result = run("train", labelled_csv, "--target", "answer", "--hidden", "16,8",
                 "--activation", "relu", "--epochs", 30, "--batch-size", 16, "--lr", 0.05,
                 "--momentum", 0.5, "--l2", 0.01, "--seed", 3, "--test-fraction", 0.2,
                 "--dtype", "float32", "--save", "m.npz", cwd=tmp_path)
    assert_ok(result)
    assert "3 classes, one-hot" in result.stdout
    assert "173 train / 19 validation / 48 test rows" in result.stdout
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
    assert meta["task"] == "regression" and meta["targets"] == ["price"]
    assert [(f["name"], f["kind"], f["width"]) for f in meta["features"]] == [
        ("size", "number", 1), ("age", "number", 1)]
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
    r2 = float(re.search(r"^test  mse loss \S+ \(½ squared error a row, standardised targets\)  "
                         r"rmse \S+ \(target units\)  r2 ([0-9.-]+)$", result.stdout, re.M).group(1))
    assert r2 > 0.9


def test_train_npz_without_test_rows(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 4))
    np.savez(tmp_path / "data.npz", X=X, label=(X[:, 0] > 0).astype(int))
    result = run("train", "data.npz", "--target", "label", "--loss", "bce", "--epochs", 5,
                 "--test-fraction", 0, "--hidden", "none", cwd=tmp_path)
    assert_ok(result)
    assert "90 train / 10 validation / 0 test rows, 4 inputs from 1 columns" in result.stdout
    assert "Network([4, 2]" in result.stdout and "output_activation='sigmoid'" in result.stdout
    assert len(re.findall(r"^epoch +\d+/5  train loss [0-9.]+  val loss [0-9.]+(  \*)?$",
                          result.stdout, re.M)) == 5
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
    (tmp_path / "nul.csv").write_bytes(b"a,y\n\x00\x01,2\n")
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
    (["train", "no_label.csv", "--target", "y"], ["line 3 has no valid target 'y': ''"]),
    (["train", "nan_label.csv", "--target", "y"], ["line 3 has no valid target 'y': 'NaN'"]),
    (["train", "binary.csv", "--target", "y"], ["starts like utf-16 text but is not"]),
    (["train", "nul.csv", "--target", "y"], ["line 2 holds a NUL byte: a binary file"]),
    (["train", "ok.csv", "--target", "y", "--encoding", "klingon"], ["no such text encoding"]),
    (["train", "ok.csv", "--target", "y", "--sep", "ab"], ["--sep", "one character"]),
    (["train", "ok.csv", "--target", "y", "--drop", "zz"], ["unknown column 'zz' (--drop)"]),
    (["train", "ok.csv", "--target", "y", "--features", "a,y"], ["both a target and a feature"]),
    (["train", "ok.csv", "--target", "y", "--test", "ok.csv", "--test-fraction", "0.1"],
     ["--test and --test-fraction"]),
    (["evaluate", "missing.npz", "ok.csv"], ["missing.npz: no such model file"]),
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
        assert list(label.values) == ["cat", "dog"] and label.missing is None
        assert list(table.lines) == [2, 4]  # the lines in the file, blank lines counted


def test_read_npz_widths_text_and_the_model_entry(tmp_path):
    from fastbp.cli.model import META_KEY
    from fastbp.cli.tables import read_npz

    np.savez(tmp_path / "d.npz", X=np.arange(6).reshape(3, 2), s=np.array([b"x", b"y", b"z"]),
             **{META_KEY: np.array("{}")})
    table = read_npz(str(tmp_path / "d.npz"))
    assert table.names() == ["X", "s"]
    assert table.column("X").width == 2 and table.column("X").values.dtype == np.float64
    assert list(table.column("s").values) == ["x", "y", "z"]


def test_encode_targets_decides_the_task_and_orders_the_classes():
    from fastbp.cli.features import encode_targets, targets_as_trained
    from fastbp.cli.model import ModelMeta
    from fastbp.cli.tables import Column, Table

    table = Table("t", [Column("k", np.array([3.0, 1.0, 3.0, 2.0]), True),
                        Column("v", np.array([0.5, 1.0, 1.5, 2.0]), True),
                        Column("gaps", np.array([10.0, 20.0, 10.0, 30.0]), True),
                        Column("s", np.array(["b", "a", "b", "a"], dtype=object), False)])
    task, Y, classes, notes = encode_targets(table, ["k"], "auto", None)
    assert task == "classification" and classes == [1, 2, 3]
    assert notes[0] == "target 'k': classification (integer codes 1..3)"
    np.testing.assert_array_equal(Y.argmax(1), [2, 0, 2, 1])
    task, Y, classes, _ = encode_targets(table, ["v"], "auto", None)
    assert task == "regression" and classes is None and Y.shape == (4, 1)
    # integers that are not consecutive codes are a quantity
    assert encode_targets(table, ["gaps"], "auto", None)[0] == "regression"
    assert encode_targets(table, ["k"], "regression", None)[0] == "regression"
    task, Y, classes, _ = encode_targets(table, ["s"], "auto", None)
    assert classes == ["a", "b"]
    meta = ModelMeta(targets=["s"], task="classification", loss="cross_entropy", features=[],
                     classes=["b", "a"], x_mean=[], x_scale=[], y_mean=[0, 0], y_scale=[1, 1])
    np.testing.assert_array_equal(targets_as_trained(table, meta).argmax(1), [0, 1, 0, 1])


def test_model_metadata_round_trip(tmp_path):
    from fastbp.cli.model import ModelMeta, load_model, save_model

    net = fastbp.Network([2, 3], seed=0)
    meta = ModelMeta(targets=["y"], task="regression", loss="mse",
                     features=[{"name": "a", "kind": "number", "width": 2, "fill": None}],
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


# -- real tables (issue #16, part 3) ----------------------------------------------
# In process through main(argv) where the behaviour is not about the process itself.

def cli(capsys, *args):
    """``fastbp ARGS`` in this process; (exit code, stdout, stderr)."""
    from fastbp.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_cli_error(outcome, *phrases, code=2):
    status, out, err = outcome
    lines = err.splitlines()
    assert status == code, (status, out, err)
    assert len(lines) == 1 and re.match(r"fastbp( \w+)?: error: ", lines[0]), err
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


LINNERUD = """Chins,Situps,Jumps,Weight,Waist,Pulse
5,162,60,191,36,50
2,110,60,189,37,52
12,101,101,193,38,58
12,105,37,162,35,62
13,155,58,189,35,46
4,101,42,182,36,56
8,101,38,211,38,56
6,125,40,167,34,60
15,200,40,176,31,74
17,251,250,154,33,56
17,120,38,169,34,50
13,210,115,166,33,52
14,215,105,154,34,64
1,50,50,247,46,50
6,70,31,193,36,46
12,210,120,202,37,62
4,60,25,176,37,54
11,230,80,157,32,52
15,225,73,156,33,54
2,110,43,138,33,68
"""


@pytest.fixture
def linnerud(tmp_path):
    """scikit-learn's linnerud as CSV: integer-valued targets Weight, Waist, Pulse."""
    path = tmp_path / "linnerud.csv"
    path.write_text(LINNERUD)
    return path


def test_integer_quantity_target_is_regression_by_default(capsys, linnerud):
    code, out, err = cli(capsys, "train", linnerud, "--target", "Pulse", "--epochs", 3)
    assert code == 0, err
    assert ("target 'Pulse': regression (integers 46..74, 11 distinct values: not consecutive "
            "class codes") in out
    assert "(regression, standardized)" in out and "accuracy" not in out


def test_integer_target_taken_as_many_classes_warns(capsys, linnerud):
    code, out, err = cli(capsys, "train", linnerud, "--target", "Pulse", "--task",
                         "classification", "--epochs", 2)
    assert code == 0
    assert err.strip() == ("fastbp: warning: target 'Pulse' is taken as 11 classes of its "
                           "integer values, 1.82 rows a class; if it is a quantity, use "
                           "--task regression")
    assert "(11 classes, one-hot)" in out


@pytest.mark.parametrize("targets", [["Weight,Waist,Pulse"], ["Weight", "Waist", "Pulse"]])
def test_several_regression_targets(capsys, tmp_path, linnerud, targets):
    options = [item for t in targets for item in ("--target", t)]
    code, out, err = cli(capsys, "train", linnerud, *options, "--epochs", 5, "--save",
                         tmp_path / "m.npz")
    assert code == 0, err
    assert "Network([3, 32, 3]" in out and "target 'Weight', 'Waist', 'Pulse'" in out
    for name in ("Weight", "Waist", "Pulse"):
        assert re.search(rf"^test    {name}: rmse \S+ \(its units\)  r2 \S+$", out, re.M)
    code, out, _ = cli(capsys, "predict", tmp_path / "m.npz", linnerud)
    header, rows = read_output_csv(out)
    assert header == ["Weight", "Waist", "Pulse"] and len(rows) == 20


def test_several_two_class_targets_are_multilabel(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    write_csv(tmp_path / "m.csv", ["a", "b", "left", "up"],
              [[*np.round(x, 3), "yes" if x[0] > 0 else "no", int(x[1] > 0)] for x in X])
    code, out, err = cli(capsys, "train", tmp_path / "m.csv", "--target", "left,up",
                         "--epochs", 30, "--save", tmp_path / "m.npz")
    assert code == 0, err
    assert "(multilabel, a sigmoid output each), loss bce" in out
    accuracy = re.search(r"^test  bce loss .*accuracy per target \(fraction right\): left (\S+)  "
                         r"up (\S+)", out, re.M)
    assert float(accuracy.group(1)) > 0.85 and float(accuracy.group(2)) > 0.85
    code, out, _ = cli(capsys, "predict", tmp_path / "m.npz", tmp_path / "m.csv")
    header, rows = read_output_csv(out)
    assert header == ["left", "left=yes", "up", "up=1"]
    assert {row[0] for row in rows} == {"yes", "no"} and {row[2] for row in rows} == {"0", "1"}


def test_several_targets_with_more_than_two_classes_are_refused(capsys, tmp_path):
    write_csv(tmp_path / "t.csv", ["a", "k", "s"], [[i, i % 3, "xy"[i % 2]] for i in range(30)])
    assert_cli_error(cli(capsys, "train", tmp_path / "t.csv", "--target", "k,s"),
                     "two classes each", "'k' has 3")


def test_features_and_drop_choose_the_columns(capsys, tmp_path, labelled_csv):
    with open(labelled_csv) as handle:
        rows = list(csv.reader(handle))
    write_csv(tmp_path / "ids.csv", ["id"] + rows[0], [[k] + r for k, r in enumerate(rows[1:])])
    code, out, _ = cli(capsys, "train", tmp_path / "ids.csv", "--target", "answer", "--drop",
                       "id", "--epochs", 1, "--save", tmp_path / "m.npz")
    assert code == 0 and "3 inputs from 3 columns" in out
    code, out, _ = cli(capsys, "train", tmp_path / "ids.csv", "--target", "answer",
                       "--features", "a,b", "--epochs", 1)
    assert code == 0 and "2 inputs from 2 columns" in out
    # predict reads the model's columns by name and ignores the id
    code, out, _ = cli(capsys, "predict", tmp_path / "m.npz", labelled_csv)
    assert code == 0 and len(read_output_csv(out)[1]) == 240


def test_text_features_are_one_hot_and_predict_applies_the_encoder(capsys, tmp_path):
    rng = np.random.default_rng(1)
    cities = rng.choice(["Lyon", "Oslo", "Porto"], size=300)
    x = rng.normal(size=300)
    price = np.round(100 + 50 * (cities == "Oslo") + 10 * x, 3)
    write_csv(tmp_path / "flats.csv", ["city", "x", "price"], zip(cities, np.round(x, 3), price))
    code, out, err = cli(capsys, "train", tmp_path / "flats.csv", "--target", "price",
                         "--epochs", 60, "--save", tmp_path / "m.npz")
    assert code == 0, err
    assert "4 inputs from 2 columns (1 text, one-hot)" in out
    r2 = float(re.search(r"^test .* r2 (\S+)$", out, re.M).group(1))
    assert r2 > 0.9
    with np.load(tmp_path / "m.npz") as archive:
        meta = json.loads(str(archive["fastbp_cli"]))
    assert meta["features"][0] == {"name": "city", "kind": "category",
                                   "categories": ["Lyon", "Oslo", "Porto"], "fill": None}
    write_csv(tmp_path / "new.csv", ["x", "city"], [[0, "Oslo"], [0, "Lyon"], [0, "Rome"]])
    code, out, err = cli(capsys, "predict", tmp_path / "m.npz", tmp_path / "new.csv")
    assert code == 0
    predicted = [float(row[0]) for row in read_output_csv(out)[1]]
    assert abs(predicted[0] - predicted[1] - 50) < 10  # Oslo's premium, learnt
    assert ("column 'city' holds 1 values not seen in training (first 'Rome', line 4); they "
            "are encoded as all zeros") in err


def test_a_text_column_with_too_many_values_is_refused(capsys, tmp_path):
    write_csv(tmp_path / "t.csv", ["name", "y"], [[f"person {i}", i % 2] for i in range(300)])
    assert_cli_error(cli(capsys, "train", tmp_path / "t.csv", "--target", "y"),
                     "text column 'name' has", "an id or free text", "--drop name")


@pytest.fixture
def gappy_csv(tmp_path):
    rng = np.random.default_rng(2)
    rows = []
    for k in range(200):
        a, b = rng.normal(size=2)
        rows.append([round(a, 3), round(b, 3), "xyz"[k % 3], round(3 * a - b, 3)])
    rows[3][0] = ""
    rows[5][1] = "NA"
    rows[7][2] = "?"
    rows[9][3] = ""
    return write_csv(tmp_path / "gappy.csv", ["a", "b", "c", "y"], rows)


def test_missing_cells_are_an_error_without_impute(capsys, gappy_csv):
    assert_cli_error(cli(capsys, "train", gappy_csv, "--target", "y"),
                     "line 11 has no valid target 'y': ''", "--impute")
    assert_cli_error(cli(capsys, "train", gappy_csv, "--target", "y", "--drop", "a",
                         "--features", "b"), "line 11 has no valid target")


@pytest.mark.parametrize("impute,rows", [("mean", 199), ("median", 199), ("drop", 196)])
def test_impute_fills_or_drops_and_predict_fills_the_same(capsys, tmp_path, gappy_csv, impute,
                                                          rows):
    code, out, err = cli(capsys, "train", gappy_csv, "--target", "y", "--impute", impute,
                         "--epochs", 20, "--save", tmp_path / "m.npz")
    assert code == 0, err
    assert "fastbp: note: dropped 1 rows without a target 'y'" in err
    n = [int(v) for v in re.search(r"(\d+) train / (\d+) validation / (\d+) test rows",
                                   out).groups()]
    assert sum(n) == rows
    with np.load(tmp_path / "m.npz") as archive:
        meta = json.loads(str(archive["fastbp_cli"]))
    assert meta["impute"] == impute
    write_csv(tmp_path / "new.csv", ["a", "b", "c"], [["", "1", "x"], ["0.5", "1", ""]])
    outcome = cli(capsys, "predict", tmp_path / "m.npz", tmp_path / "new.csv")
    if impute == "drop":
        assert_cli_error(outcome, "line 2, column 'a' is empty", "without --impute mean or median")
        return
    assert outcome[0] == 0
    fill = meta["features"][0]["fill"][0]
    assert meta["features"][2]["fill"] in ("x", "y", "z")
    code, out, _ = cli(capsys, "predict", tmp_path / "m.npz", write_csv(
        tmp_path / "filled.csv", ["a", "b", "c"], [[fill, "1", "x"]]))
    assert read_output_csv(out)[1][0] == read_output_csv(outcome[1])[1][0]


IRIS_ROWS = [["0", "5.1", "3.5", "1.4", "0.2", "setosa"], ["1", "7", "3.2", "4.7", "1.4", "versicolor"],
             ["2", "6.3", "3.3", "6", "2.5", "virginica"], ["3", "4.9", "3", "1.4", "0.2", "setosa"]]
IRIS_HEADER = ["id", "sepal length", "sepal width", "petal length", "petal width", "species"]


def _iris_text(sep, decimal=".", label_suffix=""):
    lines = [sep.join(IRIS_HEADER)]
    for row in IRIS_ROWS:
        cells = [c.replace(".", decimal) for c in row[:-1]] + [row[-1] + label_suffix]
        lines.append(sep.join(cells))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name,data,dialect", [
    ("comma", _iris_text(",").encode(), "separator ','"),
    ("semicolon decimal comma", _iris_text(";", ",").encode(), "separator ';', decimal comma"),
    ("tab", _iris_text("\t").encode(), "separator tab"),
    ("pipe", _iris_text("|").encode(), "separator '|'"),
    ("latin-1", _iris_text(";", ",", "é").encode("latin-1"),
     "separator ';', decimal comma, cp1252"),
    ("utf-16 tab (Excel's Unicode text)", _iris_text("\t").encode("utf-16"),
     "separator tab, utf-16"),
])
def test_separator_decimal_and_encoding_are_detected(tmp_path, name, data, dialect):
    from fastbp.cli.tables import read_csv

    (tmp_path / "t.csv").write_bytes(data)
    table = read_csv(str(tmp_path / "t.csv"))
    assert table.names() == IRIS_HEADER and table.dialect == dialect
    np.testing.assert_array_equal(table.column("sepal length").values, [5.1, 7, 6.3, 4.9])
    assert table.column("species").values[0].startswith("setosa")
    assert [c.numeric for c in table.columns] == [True] * 5 + [False]
    assert bool(table.notes) == (name == "latin-1")


def test_sep_encoding_and_decimal_options_override_the_guess(tmp_path):
    from fastbp.cli.tables import ReadOptions, read_csv

    (tmp_path / "t.csv").write_bytes("a;b\n1,5;x\n2,5;é\n".encode("latin-1"))
    table = read_csv(str(tmp_path / "t.csv"), ReadOptions(sep=";", encoding="latin-1",
                                                          decimal="."))
    assert table.column("a").values[0] == "1,5" and table.column("b").values[1] == "é"
    table = read_csv(str(tmp_path / "t.csv"), ReadOptions(encoding="latin-1"))
    np.testing.assert_array_equal(table.column("a").values, [1.5, 2.5])


def test_semicolon_file_trains_end_to_end(capsys, tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 2))
    lines = ["x1;x2;label"] + [f"{a:.3f};{b:.3f};{'ja' if a > 0 else 'nein'}".replace(".", ",")
                               for a, b in X]
    (tmp_path / "de.csv").write_text("\n".join(lines) + "\n", encoding="cp1252")
    code, out, err = cli(capsys, "train", tmp_path / "de.csv", "--target", "label", "--epochs", 20)
    assert code == 0, err
    assert "(separator ';', decimal comma)" in out and "2 inputs from 2 columns" in out


@pytest.mark.parametrize("where,expected", [
    ("feature", "column 'Chins' holds 1e+308 (line 2): too large to standardise"),
    ("target", "target 'Pulse' holds 1e+308 (line 2): too large to standardise"),
])
def test_values_whose_scaling_overflows_name_the_column(capsys, tmp_path, where, expected):
    lines = LINNERUD.splitlines()
    first = lines[1].split(",")
    first[0 if where == "feature" else -1] = "1e308"
    lines[1] = ",".join(first)
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    assert_cli_error(cli(capsys, "train", tmp_path / "big.csv", "--target", "Pulse"), expected)
    if where == "feature":
        assert_cli_error(cli(capsys, "train", tmp_path / "big.csv", "--target", "Pulse",
                             "--no-standardize", "--dtype", "float32"),
                         "column 'Chins': the value 1e+308 (line 2) does not fit float32")


def test_early_stopping_keeps_the_best_epoch(capsys, regression_csv):
    code, out, err = cli(capsys, "train", regression_csv, "--target", "price", "--epochs", 60,
                         "--patience", 3, "--lr", 0.3, "--seed", 1)
    assert code == 0, err
    val = [float(v) for v in re.findall(r"^epoch .*  val loss ([0-9.]+)", out, re.M)]
    kept = re.search(r"kept the weights of epoch (\d+), the lowest val loss \(([0-9.]+)\)", out)
    best = int(kept.group(1))
    assert val[best - 1] == min(val) == float(kept.group(2))
    final = float(re.search(r"^val   mse loss (\S+)", out, re.M).group(1))
    assert final == pytest.approx(min(val), rel=1e-4)  # the best epoch's weights, not the last
    off = cli(capsys, "train", regression_csv, "--target", "price", "--epochs", 4,
              "--no-early-stopping")[1]
    assert "0 validation" in off and "kept the weights" not in off


def test_printed_figures_name_their_units(capsys, regression_csv, labelled_csv):
    out = cli(capsys, "train", regression_csv, "--target", "price", "--epochs", 2)[1]
    assert "loss per epoch in ½ squared error a row, standardised targets" in out
    assert "rmse" in out and "(target units)" in out and "µs" in out
    out = cli(capsys, "train", regression_csv, "--target", "price", "--epochs", 2,
              "--no-standardize", "--lr", 1e-6)[1]
    assert "½ squared error a row, targets as given" in out
    out = cli(capsys, "train", labelled_csv, "--target", "answer", "--epochs", 2)[1]
    assert "loss per epoch in nats a row" in out and "rows right)" in out


def test_evaluate_and_a_test_file(capsys, tmp_path, labelled_csv):
    with open(labelled_csv) as handle:
        rows = list(csv.reader(handle))
    write_csv(tmp_path / "fit.csv", rows[0], rows[1:181])
    write_csv(tmp_path / "held.csv", rows[0], rows[181:])
    code, out, err = cli(capsys, "train", tmp_path / "fit.csv", "--target", "answer", "--test",
                         tmp_path / "held.csv", "--epochs", 20, "--save", tmp_path / "m.npz")
    assert code == 0, err
    assert "162 train / 18 validation / 60 test rows (from" in out
    test_line = re.search(r"^test  (.*)$", out, re.M).group(1)
    code, out, err = cli(capsys, "evaluate", tmp_path / "m.npz", tmp_path / "held.csv")
    assert code == 0, err
    assert "60 rows, target 'answer' (classification)" in out
    assert re.search(r"^data  ?(.*)$", out, re.M).group(1).strip() == test_line.strip()
    write_csv(tmp_path / "no_target.csv", ["a", "b", "c"], [[1, 2, 3]])
    assert_cli_error(cli(capsys, "evaluate", tmp_path / "m.npz", tmp_path / "no_target.csv"),
                     "unknown column 'answer' (a target of the model)")


def test_help_shows_every_default():
    import argparse

    from fastbp.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        if name == "bench":  # passes its options on to bench/compare.py
            continue
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            shown = formatter._get_help_string(action)
            assert "default" in shown, (name, action.option_strings, shown)
            assert "(default: True)" not in shown and "(default: False)" not in shown


def test_help_prints_the_defaults(tmp_path):
    result = run("train", "--help", cwd=tmp_path)
    assert_ok(result)
    text = " ".join(result.stdout.split())
    for phrase in ("--epochs EPOCHS most epochs (early stopping usually ends sooner) (default: 200)",
                   "rows per update (default: 32)", "SGD momentum (default: 0.9)",
                   "(default: float64)", "--standardize, --no-standardize",
                   "uses them as they are (default: on)", "Nesterov momentum (default: off)"):
        assert phrase in text, phrase


# -- the process: exit codes, signals, pipes ------------------------------------

def test_ctrl_c_reports_saves_and_exits_130(tmp_path):
    import signal
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "fastbp", "train", "digits", "--epochs", "100000", "--hidden",
         "64", "--batch-size", "1", "--momentum", "0", "--no-early-stopping", "--save",
         "m.npz"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("epoch   1/"):
            line = process.stdout.readline()
            assert line, process.stderr.read()
            lines.append(line)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert re.search(r"fastbp: warning: interrupted after \d+ complete epochs: kept the weights "
                     r"after the last completed batch; saving them", err)
    assert re.search(r"^test  cross_entropy loss \S+ \(nats a row\)  accuracy", out, re.M)
    assert "saved the model to m.npz" in out
    assert fastbp.load(tmp_path / "m.npz").sizes == (64, 64, 10)


@pytest.mark.parametrize("command", [
    ["train", "digits", "--epochs", "6", "--save", "m.npz"],
    ["predict", "m.npz", "rows.csv"],
])
def test_a_closed_pipe_ends_quietly(tmp_path, command):
    if command[0] == "predict":
        fastbp.Network([3, 2], seed=0).save(tmp_path / "m.npz")
        # far more output than a pipe's buffer holds
        write_csv(tmp_path / "rows.csv", ["a", "b", "c"], np.ones((50000, 3)))
    process = subprocess.Popen([sys.executable, "-m", "fastbp", *command], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # as `| head -1` does
    err = process.stderr.read().decode()
    process.stderr.close()
    process.wait(timeout=120)
    assert first and process.returncode == 0, err
    assert err == ""
    if command[0] == "train":
        assert fastbp.load(tmp_path / "m.npz").sizes == (64, 32, 10)  # the work was finished


# -- untrusted files (issue #16, part 4) ----------------------------------------------

def test_crafted_data_files_are_one_line_errors_without_big_allocations(capsys, tmp_path):
    import gzip
    import tracemalloc
    import zipfile

    with gzip.open(tmp_path / "bomb.csv.gz", "wb") as handle:
        handle.write(b"a,y\n" + b"0" * (60 << 20))  # 60 MB of one cell in ~60 kB
    header = np.lib.format.header_data_from_array_1_0(np.zeros(2))
    header["shape"] = (10 ** 9,)
    import io as _io

    npy = _io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, header)
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("X.npy", npy.getvalue() + bytes(16))
        archive.writestr("y.npy", _io.BytesIO().getvalue())
    np.savez(tmp_path / "objects.npz", X=np.array([{}, []], dtype=object), y=np.zeros(2))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "objects.npz").read_bytes()[:100])
    cases = {"bomb.csv.gz": "unpacks to more than 32 times its size",
             "huge.npz": "declares shape (1000000000,)",
             "objects.npz": "holds Python objects",
             "cut.npz": "not an .npz file"}
    for name, phrase in cases.items():
        tracemalloc.start()
        try:
            outcome = cli(capsys, "train", tmp_path / name, "--target", "y")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert_cli_error(outcome, phrase)
        assert peak < 8 * (tmp_path / name).stat().st_size + (40 << 20), (name, peak)


def test_crafted_model_metadata_is_one_line_error(capsys, tmp_path):
    fastbp.Network([1, 2], seed=0).save(tmp_path / "plain.npz")
    with np.load(tmp_path / "plain.npz") as archive:
        entries = dict(archive)
    write_csv(tmp_path / "d.csv", ["a", "y"], [[1, 0], [2, 1]])
    bad = {"deep": "[" * 100000, "widths": json.dumps({
        "version": 2, "targets": ["y"], "task": "regression", "loss": "mse",
        "features": [{"name": "a", "kind": "number", "width": 10 ** 12, "fill": None}],
        "classes": None, "x_mean": [0], "x_scale": [1], "y_mean": [0, 0], "y_scale": [1, 1]}),
        "not text": None}
    for name, text in bad.items():
        entry = np.array(text) if text is not None else np.zeros(3)
        np.savez(tmp_path / f"{name}.npz", fastbp_cli=entry, **entries)
        assert_cli_error(cli(capsys, "predict", tmp_path / f"{name}.npz", tmp_path / "d.csv"),
                         f"{name}.npz: damaged fastbp_cli entry")


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CELLS = st.one_of(st.sampled_from(["", "NA", "?", "nan", "inf", "-1e308", "1e308", "0", "1",
                                   "2.5", "1,5", "x", "é", '"', "a b", "3"]),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.text(max_size=6))
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                    HealthCheck.too_slow])


def _assert_clean_exit(outcome):
    code, out, err = outcome
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err
    if code:
        assert len(err.strip().splitlines()) >= 1
        assert re.search(r"^fastbp( \w+)?: error: ", err, re.M), err


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".npz", ".csv.gz"]))
def test_random_bytes_as_data_or_model_exit_cleanly(capsys, tmp_path, data, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    _assert_clean_exit(cli(capsys, "train", path, "--target", "y", "--epochs", 1, "--hidden", 2))
    _assert_clean_exit(cli(capsys, "predict", path, path))
    with pytest.raises(ValueError):
        fastbp.load(path)


@PROPERTY_SETTINGS
@given(header=st.lists(st.sampled_from(["a", "b", "y", "c", "a ", ""]), min_size=1, max_size=4),
       rows=st.lists(st.lists(CELLS, min_size=0, max_size=5), max_size=8),
       sep=st.sampled_from([",", ";", "\t"]),
       extra=st.sampled_from([[], ["--impute", "mean"], ["--impute", "drop"],
                              ["--task", "regression"], ["--task", "classification"],
                              ["--target", "a,b"], ["--drop", "a"]]))
def test_random_csv_text_exits_cleanly(capsys, tmp_path, header, rows, sep, extra):
    text = "\n".join(sep.join(row) for row in [header] + rows)
    (tmp_path / "r.csv").write_text(text, encoding="utf-8")
    _assert_clean_exit(cli(capsys, "train", tmp_path / "r.csv", "--target", "y", "--epochs", 2,
                           "--hidden", 2, "--test-fraction", 0.3, *extra))


# ---------------------------------------------------------------------------
# Each case of the real-table work once more as a user meets it: `python -m
# fastbp` in a subprocess, its exit code and what it prints (the tests above
# check the details in-process, where they are fast)
# ---------------------------------------------------------------------------

def _real_table_files(tmp_path):
    (tmp_path / "linnerud.csv").write_text(LINNERUD)
    lines = LINNERUD.splitlines()
    first = lines[1].split(",")
    first[0] = "1e308"
    (tmp_path / "big.csv").write_text("\n".join([lines[0], ",".join(first)] + lines[2:]) + "\n")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 2))
    (tmp_path / "de.csv").write_text("\n".join(
        ["id;x1;x2;city;label"] + [f"{k};{a:.3f};{b:.3f};{'ab'[k % 2]};{'ja' if a > 0 else 'nein'}"
                                   .replace(".", ",") for k, (a, b) in enumerate(X)]) + "\n",
        encoding="cp1252")
    gappy = [["a", "b", "y"]] + [[round(a, 3), round(b, 3), round(3 * a - b, 3)]
                                 for a, b in rng.normal(size=(60, 2))]
    gappy[4][0] = "NA"
    write_csv(tmp_path / "gappy.csv", gappy[0], gappy[1:])


@pytest.mark.parametrize("args,code,stream,phrase", [
    (["train", "linnerud.csv", "--target", "Pulse", "--epochs", "2"], 0, "stdout",
     "target 'Pulse': regression (integers 46..74"),
    (["train", "linnerud.csv", "--target", "Pulse", "--task", "classification", "--epochs", "2"],
     0, "stderr", "is taken as 11 classes of its integer values"),
    (["train", "linnerud.csv", "--target", "Weight,Waist", "--target", "Pulse", "--epochs", "2"],
     0, "stdout", "target 'Weight', 'Waist', 'Pulse'"),
    (["train", "de.csv", "--target", "label", "--drop", "id", "--epochs", "2"], 0, "stdout",
     "(separator ';', decimal comma)"),
    (["train", "de.csv", "--target", "label", "--features", "x1,city", "--epochs", "2"], 0,
     "stdout", "(1 text, one-hot)"),
    (["train", "gappy.csv", "--target", "y"], 2, "stderr", "--impute"),
    (["train", "gappy.csv", "--target", "y", "--impute", "median", "--epochs", "2"], 0, "stdout",
     "r2"),
    (["train", "big.csv", "--target", "Pulse"], 2, "stderr",
     "column 'Chins' holds 1e+308 (line 2): too large to standardise"),
    (["train", "linnerud.csv", "--target", "Pulse", "--epochs", "3", "--patience", "1"], 0,
     "stdout", "loss per epoch in ½ squared error a row, standardised targets"),
    (["train", "--help"], 0, "stdout", "(default: 200)"),
])
def test_real_table_cases_in_a_subprocess(tmp_path, args, code, stream, phrase):
    _real_table_files(tmp_path)
    result = run(*args, cwd=tmp_path)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert phrase in getattr(result, stream), getattr(result, stream)


def test_evaluate_and_test_file_in_a_subprocess(tmp_path, labelled_csv):
    with open(labelled_csv) as handle:
        rows = list(csv.reader(handle))
    write_csv(tmp_path / "fit.csv", rows[0], rows[1:181])
    write_csv(tmp_path / "held.csv", rows[0], rows[181:])
    assert_ok(run("train", "fit.csv", "--target", "answer", "--test", "held.csv", "--epochs", 5,
                  "--save", "m.npz", cwd=tmp_path))
    result = run("evaluate", "m.npz", "held.csv", cwd=tmp_path)
    assert_ok(result)
    assert "60 rows, target 'answer' (classification)" in result.stdout


# -- daily use, round two (issue #30, part 4) ---------------------------------------
# gradcheck judges each oracle against a tolerance scaled to the gradients compared

def _wine_csv(path):
    datasets = pytest.importorskip("sklearn.datasets")
    return write_csv(path, *_frame_rows(datasets.load_wine(as_frame=True).frame))


def _frame_rows(frame):
    return list(frame.columns), frame.itertuples(index=False)


def test_gradcheck_passes_a_freshly_trained_model(capsys, tmp_path):
    # the report of the issue: wine, trained with seed 0, failed on finite differences
    # (1.1e-5 of gradients of 3e-5: the step's rounding, not a wrong gradient)
    wine = _wine_csv(tmp_path / "wine.csv")
    code, _, err = cli(capsys, "train", wine, "--target", "target", "--save", tmp_path / "w.npz")
    assert code == 0, err
    code, out, err = cli(capsys, "gradcheck", tmp_path / "w.npz", wine)
    assert code == 0, (out, err)
    errors = re.findall(r"max relative error (\S+)  \(tolerance (\S+)\)  ok$", out, re.M)
    assert len(errors) == 3 and "FAIL" not in out
    assert float(errors[2][0]) > 1e-6  # the old fixed tolerance of finite differences
    # the loosest oracle is named, with why
    assert re.search(r"^loosest: finite differences, from the step's error \S+ \(the loss's "
                     r"rounding over ε = 1e-06: \S+, truncation \S+\)", out, re.M), out


def _tables(tmp_path):
    """(path, --target) of small tables of every task: text classes, multilabel, one and
    several regression targets, integer codes."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(150, 3))
    write_csv(tmp_path / "cls.csv", ["a", "b", "c", "k"],
              [[*np.round(x, 4), "pqr"[int(x[0] > 0) + int(x[1] > 0.5)]] for x in X])
    write_csv(tmp_path / "multi.csv", ["a", "b", "c", "left", "up"],
              [[*np.round(x, 4), "yn"[int(x[0] > 0)], int(x[2] > 0)] for x in X])
    write_csv(tmp_path / "reg.csv", ["a", "b", "c", "y"],
              [[*np.round(x, 4), round(2 * x[0] - x[1] ** 2, 4)] for x in X])
    (tmp_path / "linnerud.csv").write_text(LINNERUD)
    return [("cls.csv", "k"), ("multi.csv", "left,up"), ("reg.csv", "y"),
            ("linnerud.csv", "Weight,Waist,Pulse")]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradcheck_never_fails_trained_models(capsys, tmp_path, dtype):
    for data, target in _tables(tmp_path):
        for seed in range(4):
            model = tmp_path / f"{data}.{seed}.npz"
            code, _, err = cli(capsys, "train", tmp_path / data, "--target", target, "--seed",
                               seed, "--epochs", (10, 60, 200, 200)[seed], "--dtype", dtype,
                               "--activation", ("tanh", "relu", "sigmoid", "tanh")[seed],
                               "--l2", (0, 0.01)[seed % 2], "--save", model)
            assert code == 0, err
            code, out, err = cli(capsys, "gradcheck", model, tmp_path / data, "--seed", seed,
                                 "--rows", (8, 1, 40, 8)[seed], "--l2", (0, 0.01)[seed % 2])
            assert code == 0 and "FAIL" not in out, (data, seed, out, err)


def _fitted(rng, loss, output, hidden, dtype, seed, epochs):
    """A network fitted (for ``epochs``) to a small random task, and its rows."""
    X = rng.normal(size=(60, 4))
    if loss == "mse":
        Y = np.tanh(X[:, :2] @ rng.normal(size=(2, 2)))
    else:
        Y = np.eye(3)[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    net = fastbp.Network([4, 8, Y.shape[1]], activation=hidden, output_activation=output,
                         dtype=dtype, seed=seed)
    if epochs:
        net.fit(X, Y, loss=loss, optimizer=fastbp.SGD(lr=0.1, momentum=0.9), epochs=epochs,
                batch_size=8, seed=seed, l2=0.01 * (seed % 2))
    return net, X, Y


def test_library_gradcheck_never_fails_a_correct_model():
    rng = np.random.default_rng(0)
    cases = [(loss, output, hidden, dtype, seed, epochs)
             for loss, output in (("mse", "identity"), ("mse", "tanh"), ("bce", "sigmoid"),
                                  ("cross_entropy", "softmax"), ("mse", "softmax"))
             for hidden in ("tanh", "relu", "sigmoid") for dtype in ("float64", "float32")
             for seed, epochs in ((0, 0), (1, 300))]
    worst = {}
    for k, (loss, output, hidden, dtype, seed, epochs) in enumerate(cases):
        net, X, Y = _fitted(rng, loss, output, hidden, dtype, seed, epochs)
        rows = rng.permutation(len(X))[:(8, 1, 20)[k % 3]]
        result = fastbp.gradcheck(net, X[rows], Y[rows], loss=loss, l2=0.01 * seed, seed=seed)
        assert result.failed == [], (loss, output, hidden, dtype, seed, result, result.reasons)
        assert set(result.tolerances) == set(result._fields)
        for name, tolerance in result.tolerances.items():
            worst[name] = max(worst.get(name, 0.0), getattr(result, name) / tolerance)
    # with room to spare: the tolerances are bounds, not a fit to these cases
    assert max(worst.values()) < 0.5, worst


@pytest.mark.parametrize("epochs", [0, 300])
def test_library_gradcheck_fails_a_wrong_gradient(monkeypatch, epochs):
    net, X, Y = _fitted(np.random.default_rng(1), "cross_entropy", "softmax", "tanh", "float64",
                        0, epochs)
    assert fastbp.gradcheck(net, X[:8], Y[:8], loss="cross_entropy").failed == []
    real = fastbp.Network.gradients

    def one_percent_off(self, *args, **kwargs):
        dW, db = real(self, *args, **kwargs)
        return [W * 1.01 for W in dW], db

    monkeypatch.setattr(fastbp.Network, "gradients", one_percent_off)
    result = fastbp.gradcheck(net, X[:8], Y[:8], loss="cross_entropy")
    assert {"reference", "graph"} <= set(result.failed)
    if not epochs:  # at a minimum the step's error hides 1%; the oracles do not
        assert "finite_differences" in result.failed


def test_gradcheck_fails_a_wrong_gradient_with_exit_1(capsys, monkeypatch, tmp_path):
    data, target = _tables(tmp_path)[0]
    assert cli(capsys, "train", tmp_path / data, "--target", target, "--epochs", 50, "--save",
               tmp_path / "m.npz")[0] == 0
    real = fastbp.Network.gradients

    def wrong_bias_gradient(self, *args, **kwargs):
        dW, db = real(self, *args, **kwargs)
        return dW, [b * 1.05 for b in db]

    monkeypatch.setattr(fastbp.Network, "gradients", wrong_bias_gradient)
    for args in (["--sizes", "5,4,3"], [tmp_path / "m.npz", tmp_path / data]):
        code, out, err = cli(capsys, "gradcheck", *args)
        assert code == 1, (out, err)
        assert out.count("  FAIL\n") >= 2
        assert err.startswith("fastbp gradcheck: error: the compiled gradients disagree with "
                              "the oracles: the per-neuron reference, the graph engine")


# -- targets, identifiers, too few rows and plain values in messages ----------------

@pytest.mark.parametrize("values,extra,shown", [
    (["5"] * 30, [], "'y' is 5 on every one of the 30 rows"),
    (["2.5"] * 30, ["--task", "regression"], "'y' is 2.5 on every one of the 30 rows"),
])
def test_a_constant_target_is_refused(capsys, tmp_path, values, extra, shown):
    write_csv(tmp_path / "c.csv", ["a", "y"], [[k * 0.5, v] for k, v in enumerate(values)])
    outcome = cli(capsys, "train", tmp_path / "c.csv", "--target", "y", *extra)
    assert_cli_error(outcome, f"c.csv: the target {shown}", "nothing to learn")
    assert "r2" not in outcome[1]


def test_a_constant_column_of_several_targets_is_named(capsys, tmp_path, linnerud):
    lines = LINNERUD.splitlines()
    rows = [line.split(",") for line in lines[1:]]
    write_csv(tmp_path / "l.csv", lines[0].split(","), [r[:4] + [r[4], "60"] for r in rows])
    assert_cli_error(cli(capsys, "train", tmp_path / "l.csv", "--target", "Waist,Pulse"),
                     "the target 'Pulse' is 60 on every one of the 20 rows")
    np.savez(tmp_path / "y2.npz", X=np.arange(30.0), Y=np.c_[np.arange(30.0), np.ones(30)])
    assert_cli_error(cli(capsys, "train", tmp_path / "y2.npz", "--target", "Y"),
                     "the target 'Y[1]' is 1 on every one of the 30 rows")


def _passengers(path, n):
    rng = np.random.default_rng(5)
    fare = np.round(rng.uniform(5, 80, n), 2)
    return write_csv(path, ["PassengerId", "Fare", "Ticket", "Survived"],
                     [[1 + k, f, 1000 + 7 * k + 0.5, int(f > 30)] for k, f in enumerate(fare)])


def test_an_integer_id_column_gets_a_warning_naming_drop(capsys, tmp_path):
    data = _passengers(tmp_path / "titanic.csv", 40)
    code, out, err = cli(capsys, "train", data, "--target", "Survived", "--epochs", 2)
    assert code == 0
    assert err.strip() == (f"fastbp: warning: {data}: column 'PassengerId' holds a different "
                           "integer on every one of the 40 rows, like a row identifier; it is "
                           "trained on as a number (--drop PassengerId if it is an identifier)")
    # distinct floats (Fare, Ticket) are quantities: no warning for them
    code, out, err = cli(capsys, "train", data, "--target", "Survived", "--epochs", 2,
                         "--drop", "PassengerId")
    assert code == 0 and err == ""
    # in a short table distinct integers are common: no warning
    short = _passengers(tmp_path / "short.csv", 19)
    code, out, err = cli(capsys, "train", short, "--target", "Survived", "--epochs", 2)
    assert code == 0 and "PassengerId" not in err


def test_an_id_column_warning_in_a_subprocess(tmp_path):
    _passengers(tmp_path / "titanic.csv", 30)
    result = run("train", "titanic.csv", "--target", "Survived", "--epochs", 2, cwd=tmp_path)
    assert_ok(result)
    assert "fastbp: warning: titanic.csv: column 'PassengerId'" in result.stderr
    assert "--drop PassengerId" in result.stderr


@pytest.mark.parametrize("n,extra,phrases", [
    (1, [], ["one row only"]),
    (2, [], ["2 rows are too few to split into training / validation / test rows with at "
             "least one each (--test-fraction 0.25 takes 1 for testing)",
             "--no-early-stopping, or --test-fraction 0"]),
    (2, ["--test-fraction", "0.9"], ["(--test-fraction 0.9 takes 2 for testing); give more "
                                     "rows, or --test-fraction 0"]),
    (1, ["--test-fraction", "0", "--no-early-stopping"], ["one row only"]),
])
def test_too_few_rows_to_split_are_refused(capsys, tmp_path, n, extra, phrases):
    write_csv(tmp_path / "few.csv", ["a", "y"], [[k, 2.5 * k * k] for k in range(n)])
    assert_cli_error(cli(capsys, "train", tmp_path / "few.csv", "--target", "y", *extra),
                     *phrases)


@pytest.mark.parametrize("n,extra,split", [
    (2, ["--test-fraction", "0"], "1 of 2 rows (1 validation, 0 test)"),
    (2, ["--test-fraction", "0", "--no-early-stopping"], "2 of 2 rows (0 validation, 0 test)"),
    (3, [], "1 of 3 rows (1 validation, 1 test)"),
    (12, [], "8 of 12 rows (1 validation, 3 test)"),
])
def test_training_on_few_rows_warns(capsys, tmp_path, n, extra, split):
    write_csv(tmp_path / "few.csv", ["a", "y"], [[k + 0.5, 2.5 * k * k] for k in range(n)])
    code, out, err = cli(capsys, "train", tmp_path / "few.csv", "--target", "y", "--epochs", 2,
                         *extra)
    assert code == 0
    assert err.strip() == (f"fastbp: warning: training on {split}: too few for the fit or its "
                           "metrics to mean much")


def test_a_split_error_in_a_subprocess(tmp_path):
    write_csv(tmp_path / "two.csv", ["a", "y"], [[0, 1.5], [1, 2.5]])
    assert_one_line_error(run("train", "two.csv", "--target", "y", cwd=tmp_path),
                          "2 rows are too few to split")


def test_messages_print_plain_values_not_numpy_reprs(capsys, tmp_path):
    write_csv(tmp_path / "one.csv", ["a", "y"], [[1, "cat"], [2, "cat"]])
    outcome = cli(capsys, "train", tmp_path / "one.csv", "--target", "y")
    assert_cli_error(outcome, "the target 'y' has a single class ('cat')")
    assert "np." not in outcome[2]


def test_plain_values_in_a_subprocess(tmp_path):
    write_csv(tmp_path / "one.csv", ["a", "y"], [[1, "cat"], [2, "cat"]])
    assert_one_line_error(run("train", "one.csv", "--target", "y", cwd=tmp_path),
                          "single class ('cat')")
