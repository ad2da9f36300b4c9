"""The public contract of ``Network.save`` and ``fastbp.load``."""
import os
import re
import stat
import zipfile

import numpy as np
import pytest

import fastbp

ARCHITECTURES = {
    "sigmoid float64": dict(sizes=[3, 5, 2], activation="sigmoid", output_activation="sigmoid",
                            dtype="float64"),
    "per-layer float32 softmax": dict(sizes=[3, 6, 4, 3], activation=["relu", "tanh"],
                                      output_activation="softmax", dtype="float32"),
    "no hidden layer": dict(sizes=[4, 2], activation="sigmoid", output_activation="identity",
                            dtype="float64"),
    "deep mixed float32": dict(sizes=[2, 3, 3, 3, 1], activation=["identity", "relu", "sigmoid"],
                               output_activation="tanh", dtype="float32"),
}


def trained(spec, seed=0):
    """A network whose weights and biases have moved away from their start."""
    net = fastbp.Network(spec["sizes"], activation=spec["activation"],
                         output_activation=spec["output_activation"], dtype=spec["dtype"], seed=seed)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20, spec["sizes"][0]))
    n_out = spec["sizes"][-1]
    if spec["output_activation"] == "softmax":
        Y = np.eye(n_out)[rng.integers(0, n_out, size=20)]
    else:
        Y = rng.uniform(0, 1, size=(20, n_out))
    # mse for every output, as these files were first written (softmax now defaults to
    # cross_entropy)
    net.fit(X, Y, loss="mse", optimizer=fastbp.SGD(lr=0.3, momentum=0.5), epochs=3,
            batch_size=5, seed=seed)
    assert all(np.any(b != 0) for b in net.biases)
    return net, X


def assert_same_network(a, b):
    assert type(b) is fastbp.Network
    assert b.sizes == a.sizes
    assert tuple(b.activations) == tuple(a.activations)
    assert b.output_activation == a.output_activation
    assert b.dtype == a.dtype
    for got, want in zip(b.weights + b.biases, a.weights + a.biases, strict=True):
        assert got.dtype == want.dtype
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def path_in_message(path):
    return re.escape(str(path))


# ---------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("as_str", [False, True], ids=["pathlib", "str"])
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_round_trip_is_exact(tmp_path, arch, as_str):
    spec = ARCHITECTURES[arch]
    net, X = trained(spec)
    path = tmp_path / "model.npz"
    net.save(str(path) if as_str else path)
    loaded = fastbp.load(str(path) if as_str else path)
    assert_same_network(net, loaded)
    assert loaded.dtype == np.dtype(spec["dtype"])
    if isinstance(spec["activation"], list):
        assert loaded.activations == tuple(spec["activation"])
    else:
        assert loaded.activations == (spec["activation"],) * (len(spec["sizes"]) - 2)
    expected = net.predict(X)
    got = loaded.predict(X)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert loaded.n_params == net.n_params
    assert repr(loaded) == repr(net)


def test_loaded_network_is_independent_and_trainable(tmp_path):
    net, X = trained(ARCHITECTURES["sigmoid float64"])
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = fastbp.load(path)
    before = net.weights
    history = loaded.fit(X, np.zeros((X.shape[0], 2)), epochs=2, batch_size=4, seed=0)
    assert np.isfinite(history["loss"]).all()
    assert not np.array_equal(loaded.weights[0], before[0])
    for got, want in zip(net.weights, before):
        np.testing.assert_array_equal(got, want)
    # the file is unchanged too
    assert_same_network(net, fastbp.load(path))


def test_file_is_a_plain_npz_with_a_format_version(tmp_path):
    net, _ = trained(ARCHITECTURES["per-layer float32 softmax"])
    path = tmp_path / "model.npz"
    net.save(path)
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as archive:
        assert "format_version" in archive.files
        version = archive["format_version"]
        assert version.shape == () and version.dtype.kind in "iu" and int(version) >= 1
        # everything in it is readable without pickles
        for key in archive.files:
            assert archive[key].dtype != object
        params = [archive[key] for key in archive.files if archive[key].dtype == np.float32]
    assert params, "float32 parameters must be stored as float32"
    assert sum(p.size for p in params) == net.n_params


def test_path_is_used_exactly_as_given(tmp_path):
    net, _ = trained(ARCHITECTURES["no hidden layer"])
    path = tmp_path / "model.bin"
    net.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.bin"]
    assert_same_network(net, fastbp.load(path))


# ---------------------------------------------------------------------------
# Atomic saving and overwriting
# ---------------------------------------------------------------------------

def test_save_leaves_no_temporary_files(tmp_path):
    net, _ = trained(ARCHITECTURES["sigmoid float64"])
    for name in ("a.npz", "b.npz"):
        net.save(tmp_path / name)
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz"]


def test_overwriting_an_existing_file(tmp_path):
    path = tmp_path / "model.npz"
    first, _ = trained(ARCHITECTURES["sigmoid float64"], seed=0)
    second, X = trained(ARCHITECTURES["deep mixed float32"], seed=1)
    first.save(path)
    second.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]
    loaded = fastbp.load(path)
    assert_same_network(second, loaded)
    np.testing.assert_array_equal(loaded.predict(X), second.predict(X))
    # and back again, same architecture with other values
    third, _ = trained(ARCHITECTURES["deep mixed float32"], seed=2)
    third.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]
    assert_same_network(third, fastbp.load(path))


def test_failed_save_cleans_up_and_keeps_the_target(tmp_path):
    # the target is a non-empty folder: os.replace must fail, and the
    # temporary file must not be left behind
    target = tmp_path / "model.npz"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    net, _ = trained(ARCHITECTURES["sigmoid float64"])
    with pytest.raises(OSError):
        net.save(target)
    assert os.listdir(tmp_path) == ["model.npz"]
    assert os.listdir(target) == ["keep.txt"]


def test_save_into_a_missing_folder_raises(tmp_path):
    net, _ = trained(ARCHITECTURES["sigmoid float64"])
    with pytest.raises(FileNotFoundError):
        net.save(tmp_path / "missing" / "model.npz")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# Bad files
# ---------------------------------------------------------------------------

def _write_bad_file(kind, path, good_bytes):
    if kind == "truncated":
        path.write_bytes(good_bytes[: len(good_bytes) // 2])
    elif kind == "truncated header":
        path.write_bytes(good_bytes[:10])
    elif kind == "garbage":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, size=2000, dtype=np.uint8).tobytes())
    elif kind == "garbage with zip magic":
        rest = np.random.default_rng(1).integers(0, 256, size=2000, dtype=np.uint8).tobytes()
        path.write_bytes(b"PK\x03\x04" + rest)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("sizes: [3, 5, 2]\n")
    elif kind == "foreign npz":
        np.savez(path, weights=np.ones((3, 2)), bias=np.zeros(2))
    elif kind == "empty npz":
        np.savez(path)
    elif kind == "npy":
        with open(path, "wb") as handle:
            np.save(handle, np.arange(5.0))
    elif kind == "pickled npz":
        np.savez(path, format_version=np.array(1), sizes=np.array([3, 5, 2]),
                 activations=np.array(["sigmoid"]), output_activation=np.array("sigmoid"),
                 dtype=np.array("float64"), params=np.array([object()], dtype=object))
    else:
        raise AssertionError(kind)


BAD_FILES = ["truncated", "truncated header", "garbage", "garbage with zip magic", "empty",
             "text", "foreign npz", "empty npz", "npy", "pickled npz"]


@pytest.mark.parametrize("kind", BAD_FILES)
def test_unreadable_file_raises_value_error_naming_the_path(tmp_path, kind):
    net, _ = trained(ARCHITECTURES["sigmoid float64"])
    good = tmp_path / "good.npz"
    net.save(good)
    path = tmp_path / f"bad {kind}.npz"
    _write_bad_file(kind, path, good.read_bytes())
    content = path.read_bytes()
    with pytest.raises(ValueError, match=path_in_message(path)):
        fastbp.load(path)
    with pytest.raises(ValueError, match=path_in_message(path)):
        fastbp.load(str(path))
    assert path.read_bytes() == content  # a failed load does not touch the file


def _fields(path):
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


DAMAGED = {
    # name: function(fields) -> None, edits a valid saved model in place
    "newer format": lambda f: f.update(format_version=np.array(99)),
    "version zero": lambda f: f.update(format_version=np.array(0)),
    "version negative": lambda f: f.update(format_version=np.array(-1)),
    "params too short": lambda f: f.update(params=f["params"][:-1]),
    "params 2-D": lambda f: f.update(params=f["params"].reshape(1, -1)),
    "params wrong dtype": lambda f: f.update(params=f["params"].astype(np.float32)),
    "params NaN": lambda f: f["params"].__setitem__(3, np.nan),
    "params inf": lambda f: f["params"].__setitem__(0, np.inf),
    "unknown activation": lambda f: f.update(activations=np.array(["swish"])),
    "softmax hidden": lambda f: f.update(activations=np.array(["softmax"])),
    "activation count": lambda f: f.update(activations=np.array(["relu", "relu"])),
    "unknown output": lambda f: f.update(output_activation=np.array("swish")),
    "unknown dtype": lambda f: f.update(dtype=np.array("float16")),
    "zero width": lambda f: f.update(sizes=np.array([3, 0, 2])),
    "one size": lambda f: f.update(sizes=np.array([3])),
    "sizes 0-D": lambda f: f.update(sizes=np.array(3)),
    "version not a number": lambda f: f.update(format_version=np.array("one")),
    "version array": lambda f: f.update(format_version=np.array([1, 2])),
    # a damaged width beyond the C int range must be reported like any other damage
    "sizes overflow int32": lambda f: f.update(sizes=np.array([3, 2 ** 40, 2])),
    "missing params": lambda f: f.pop("params"),
    "missing format_version": lambda f: f.pop("format_version"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED))
def test_damaged_model_file_raises_value_error_naming_the_path(tmp_path, damage):
    net, _ = trained(ARCHITECTURES["sigmoid float64"])
    path = tmp_path / "model.npz"
    net.save(path)
    fields = _fields(path)
    DAMAGED[damage](fields)
    np.savez(path, **fields)
    with pytest.raises(ValueError, match=path_in_message(path)):
        fastbp.load(path)


def test_damage_is_described(tmp_path):
    net, _ = trained(ARCHITECTURES["sigmoid float64"])
    path = tmp_path / "model.npz"
    net.save(path)
    fields = _fields(path)
    del fields["params"]
    np.savez(path, **fields)
    with pytest.raises(ValueError, match=r"missing entries \['params'\]"):
        fastbp.load(path)
    fields = _fields(path)
    fields["params"] = np.zeros(net.n_params)
    fields["format_version"] = np.array(99)
    np.savez(path, **fields)
    with pytest.raises(ValueError, match=r"format version 99 is newer"):
        fastbp.load(path)


@pytest.mark.parametrize("name", ["missing.npz", os.path.join("no-such-folder", "model.npz")])
def test_missing_file_raises_file_not_found(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(FileNotFoundError, match=path_in_message(path)):
        fastbp.load(path)
    with pytest.raises(FileNotFoundError):
        fastbp.load(str(path))
    assert os.listdir(tmp_path) == []


def test_loading_a_folder_is_a_value_error(tmp_path):
    folder = tmp_path / "model.npz"
    folder.mkdir()
    with pytest.raises(ValueError, match=path_in_message(folder)):
        fastbp.load(folder)


def test_save_syncs_the_file_and_then_the_folder_holding_the_rename(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    net, _ = trained(ARCHITECTURES["sigmoid float64"])
    net.save(tmp_path / "model.npz")
    assert synced == [False, True]  # the data first, then the folder entry
    assert fastbp.load(tmp_path / "model.npz").n_params == net.n_params


# ---------------------------------------------------------------------------
# Crafted files: one clear error, and no allocation beyond the file's size
# ---------------------------------------------------------------------------

def _npy_bytes(array, shape=None, descr=None):
    """``array`` as .npy bytes, optionally with a lying header."""
    import io as _io

    header = np.lib.format.header_data_from_array_1_0(array)
    if shape is not None:
        header["shape"] = shape
    if descr is not None:
        header["descr"] = descr
    buffer = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    buffer.write(array.tobytes())
    return buffer.getvalue()


def _model_entries():
    net = fastbp.Network([3, 4, 2], seed=0)
    return {"format_version": np.array(1), "sizes": np.array([3, 4, 2]),
            "activations": np.array(["sigmoid"]), "output_activation": np.array("sigmoid"),
            "dtype": np.array("float64"), "params": net._params.copy()}


def _craft(path, replace, compression=zipfile.ZIP_STORED):
    """A model archive whose entries ``replace`` maps to raw .npy bytes."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for key, value in _model_entries().items():
            archive.writestr(f"{key}.npy", replace.get(key, _npy_bytes(value)))


def _zeros_deflated(n_bytes):
    """A .npy of n_bytes zero bytes, as a deflated member would hold it."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (n_bytes // 8,)
    import io as _io

    buffer = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + bytes(n_bytes)


CRAFTED = {
    # name: (replacement entries, zip compression, phrase of the error)
    "huge declared shape": ({"params": _npy_bytes(np.zeros(3), shape=(10 ** 12,))},
                            zipfile.ZIP_STORED, "declares shape (1000000000000,)"),
    "shape bigger than the data": ({"params": _npy_bytes(np.zeros(26), shape=(10 ** 7,))},
                                   zipfile.ZIP_STORED, "declares shape (10000000,)"),
    "shape product overflowing int64": (
        {"params": _npy_bytes(np.zeros(26), shape=(2 ** 40, 2 ** 40))},
        zipfile.ZIP_STORED, "declares shape"),
    "sizes of a huge network": ({"sizes": _npy_bytes(np.array([3, 100000, 100000, 2]))},
                                zipfile.ZIP_STORED, "sizes [3, 100000, 100000, 2] need"),
    "object array": ({"params": _npy_bytes(np.zeros(26), descr="|O")},
                     zipfile.ZIP_STORED, "Python objects"),
    "structured dtype": ({"params": _npy_bytes(np.zeros(13, dtype=[("a", "<f8"), ("b", "<f8")]))},
                         zipfile.ZIP_STORED, "not plain numbers or text"),
    "complex params": ({"params": _npy_bytes(np.zeros(26, dtype=np.complex128))},
                       zipfile.ZIP_STORED, "not plain numbers or text"),
    "text params": ({"params": _npy_bytes(np.array(["x" * 8] * 26))}, zipfile.ZIP_STORED,
                    "dtype"),
    "zip bomb": ({"params": _zeros_deflated(40 << 20)}, zipfile.ZIP_DEFLATED, "unpacks to"),
    "bad magic": ({"params": b"\x93NUMPX" + bytes(200)}, zipfile.ZIP_STORED, "magic"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_file_is_one_clear_error_without_a_big_allocation(tmp_path, name):
    import tracemalloc

    replace, compression, phrase = CRAFTED[name]
    path = tmp_path / "crafted.npz"
    _craft(path, replace, compression)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=re.escape(phrase)) as caught:
            fastbp.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    # NumPy reports its buffers to tracemalloc; a read chunk is 1 MiB
    assert peak < 4 * path.stat().st_size + (3 << 20), peak


def test_truncated_member_is_one_clear_error(tmp_path):
    path = tmp_path / "m.npz"
    _craft(path, {})
    data = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo("params.npy")
    # cut the member's data short but keep the central directory: a bad CRC or short read
    start = info.header_offset + 30 + len(info.filename) + 128
    data[start:start + 16] = bytes(16)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not a readable fastbp model file"):
        fastbp.load(path)


def test_checked_reader_returns_what_np_load_does(tmp_path):
    from fastbp.io import read_npz_checked

    arrays = {"f": np.asfortranarray(np.arange(12.0).reshape(3, 4)), "i": np.arange(5, dtype=">i4"),
              "s": np.array(["ab", "c"]), "b": np.array([b"x", b"yz"]), "z": np.zeros((0, 3))}
    np.savez_compressed(tmp_path / "a.npz", **arrays)
    got = read_npz_checked(tmp_path / "a.npz", max_inflation=1000)
    assert list(got) == list(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(got[key], value)
        assert got[key].dtype == value.dtype and got[key].shape == value.shape
    assert list(read_npz_checked(tmp_path / "a.npz", names=["s", "missing"])) == ["s"]
