"""Every speed figure the README and the documentation quote, from ``bench/results/``.

    python tools/figures.py           # rewrite the README's generated regions
    python tools/figures.py --check   # exit 1 if the README's regions are out of date
    python tools/figures.py --docs D  # write the documentation's snippets into D

The benchmark scripts in ``bench/`` write their raw timings to
``bench/results/*.json``; this module is the one place that turns them into
the figures people read, so no figure is typed twice:

- the README's regions between ``<!-- figures:NAME -->`` and
  ``<!-- /figures:NAME -->`` (the one-line claims and the short speed table)
  are rewritten in place, and ``tests/test_readme.py`` checks they match;
- the documentation includes snippets that ``docs/conf.py`` writes at build
  time into ``docs/_generated/``: ``figures.inc.rst`` (an rst substitution ``|name|`` for every figure
  of :func:`figures`), ``speed_table.inc.rst`` (every case of
  ``bench/compare.py``'s two reports), ``speed_losses.inc.rst`` (the cells
  where a peer is faster) and ``estimators_table.inc.rst``.

Every ratio is recomputed here from the timings (a peer's time over
fastbp's; above 1, fastbp is faster), never read from a ratio a script
stored. Standard library only: the docs build imports it.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"

#: bench/compare.py's peers, in the tables' column order
PEERS = ("numpy", "torch", "sklearn", "fann")
PEER_NAMES = {"numpy": "NumPy", "torch": "PyTorch", "sklearn": "scikit-learn", "fann": "FANN",
              "onnxruntime": "onnxruntime"}
#: the README's short table: (net, batch size), float32, each library at its defaults
README_CASES = (("64-32-10", 1), ("64-32-10", 32), ("784-256-128-10", 32),
                ("784-256-128-10", 128), ("1024-2048-2048-10", 512))
#: bench/compare.py marks a median ``~`` when its slowest run took over this times its fastest
NOISY_SPREAD = 1.3
MID_NETS = ("64-32-10", "784-128-10", "784-256-128-10")
WIDE_NETS = ("784-128-10", "784-256-128-10")
BIG = "784-256-128-10"
HUGE = "1024-2048-2048-10"


# -- reading -------------------------------------------------------------------


def load(results: Path = RESULTS) -> dict:
    """The JSON reports of ``bench/`` that the figures come from, by file stem.

    Parameters
    ----------
    results : pathlib.Path
        The folder the benchmark scripts write to (``bench/results/``).

    Returns
    -------
    dict
        ``{"compare_1thread": {...}, "compare_defaults": {...}, "estimators": {...}, ...}``.
    """
    names = ("compare_1thread", "compare_defaults", "estimators", "predict_float32",
             "predict_float64", "xor", "sparse", "sparse_float32", "targets", "memory_float32",
             "no_avx512_1thread", "no_avx512_defaults") + BF16_PREDICT + BF16_COMPARE
    missing = [name for name in names if not (results / f"{name}.json").is_file()]
    if missing:
        raise FileNotFoundError(f"no {', '.join(missing)} report in {results}: run the bench/ "
                                "script that writes it")
    return {name: json.loads((results / f"{name}.json").read_text(encoding="utf-8"))
            for name in names}


def us_per_sample(case: dict, contender: str) -> float | None:
    """A contender's median µs a sample in one case of ``bench/compare.py``, if it ran."""
    result = case["contenders"].get(contender, {})
    return result.get("us_per_sample") if result.get("status", "ok") == "ok" else None


def ratio(case: dict, peer: str) -> float | None:
    """The peer's time over fastbp's in one case (above 1: fastbp is faster)."""
    ours, theirs = us_per_sample(case, "fastbp"), us_per_sample(case, peer)
    return theirs / ours if ours and theirs else None


def over_floor(case: dict) -> float:
    """fastbp's time over the case's FLOP floor (6 × weights a sample at the measured GEMM rate)."""
    floor = 6.0 * case["n_weights"] / (case["gemm_gflops"] * 1e9) * 1e6
    return us_per_sample(case, "fastbp") / floor


def paired(slower: list, faster: list) -> float:
    """The median over rounds of the two contenders' times in the same round."""
    return statistics.median(a / b for a, b in zip(slower, faster))


def select(reports: list, nets=None, batches=None, dtypes=None) -> list:
    """The cases of ``reports`` whose net, batch size and dtype are among those given."""
    return [case for report in reports for case in report["cases"]
            if (nets is None or case["net"] in nets)
            and (batches is None or case["batch_size"] in batches)
            and (dtypes is None or case["dtype"] in dtypes)]


def the_case(report: dict, net: str, batch: int, dtype: str) -> dict:
    """One case of a report; a KeyError naming it when the report lacks it."""
    found = select([report], (net,), (batch,), (dtype,))
    if not found:
        raise KeyError(f"{report.get('command', 'the report')} has no case {net} batch {batch} "
                       f"{dtype}")
    return found[0]


# -- formatting ----------------------------------------------------------------


def fmt_time(value: float) -> str:
    """Three significant digits, no exponent: 0.243, 5.52, 36.3, 3370."""
    decimals = max(0, 2 - math.floor(math.log10(abs(value)))) if value else 0
    return f"{value:.{decimals}f}"


def fmt_ratio(value: float) -> str:
    """Two decimals below 1 (0.58), three significant digits above (3.97, 10.5, 123)."""
    return f"{value:.2f}" if value < 1 else fmt_time(value)


def span(values, fmt, unit: str = "") -> str:
    """``low-high`` of the values (one number when both print alike), then the unit."""
    values = [v for v in values if v is not None]
    if not values:
        raise ValueError("no values to quote: the reports lack these cases")
    low, high = fmt(min(values)), fmt(max(values))
    return (low if low == high else f"{low}-{high}") + unit


def ratios(cases: list, peer: str, unit: str = "x") -> str:
    return span([ratio(case, peer) for case in cases], fmt_ratio, unit)


def times(cases: list, contender: str = "fastbp") -> str:
    return span([us_per_sample(case, contender) for case in cases], fmt_time)


# -- the figures ---------------------------------------------------------------


def _compare_figures(one: dict, defaults: dict) -> dict:
    both = [one, defaults]
    per_sample = select(both, ("2-2-1", "64-32-10"), (1,))
    batch32 = select(both, MID_NETS, (32,))
    big128 = {(report["threads"], dtype): the_case(report, BIG, 128, dtype)
              for report in both for dtype in ("float32", "float64")}
    fig = {
        "fastbp-us-221-b1": times(select(both, ("2-2-1",), (1,))),
        "fastbp-us-64-b1": times(select(both, ("64-32-10",), (1,))),
        "b1-numpy": ratios(per_sample, "numpy"),
        "b1-torch": ratios(per_sample, "torch"),
        "b1-sklearn": ratios(per_sample, "sklearn"),
        "b1-numpy-64": ratios(select(both, ("64-32-10",), (1,)), "numpy"),
        "b1-fann-64": ratios(select(both, ("64-32-10",), (1,)), "fann"),
        "b1-fann-221": ratios(select(both, ("2-2-1",), (1,)), "fann"),
        "b32-numpy": ratios(batch32, "numpy"),
        "b32-torch": ratios(batch32, "torch"),
        "b32-sklearn": ratios(batch32, "sklearn"),
        "b512-wide-numpy": ratios(select(both, WIDE_NETS, (512,)), "numpy"),
        "b512-wide-torch": ratios(select(both, WIDE_NETS, (512,)), "torch"),
        "huge-torch-1thread": ratios(select([one], (HUGE,), (32, 128, 512)), "torch"),
        "huge-torch-defaults": ratios(select([defaults], (HUGE,), (32, 128, 512)), "torch"),
        "huge-b512-torch": ratios(select(both, (HUGE,), (512,)), "torch"),
        "huge-b1-f32-torch-defaults": ratios(select([defaults], (HUGE,), (1,), ("float32",)),
                                             "torch"),
        "big-b128-floor-defaults": span([over_floor(big128["defaults", d])
                                         for d in ("float32", "float64")], fmt_ratio, "x"),
        "b512-wide-f64-floor": span([over_floor(case) for case in
                                     select(both, WIDE_NETS, (512,), ("float64",))],
                                    fmt_ratio, "x"),
        "compare-gemm-f32-1thread": span([case["gemm_gflops"] for case in
                                          select([one], dtypes=("float32",))], fmt_time),
        "compare-revision": one["fastbp_revision"],
        "compare-date": one["generated"].split()[0],
        "compare-machine": f"{one['machine']['logical_cores']}-core "
                           + re.sub(r"\((R|TM)\)", "", one["machine"]["cpu"]),
    }
    for report, label in ((one, "1thread"), (defaults, "defaults")):
        fig[f"compare-noisy-{label}"] = str(sum(
            result.get("spread", 1) > NOISY_SPREAD
            for case in report["cases"] for result in case["contenders"].values()))
    for dtype, short in (("float32", "f32"), ("float64", "f64")):
        case = the_case(defaults, BIG, 32, dtype)
        fig[f"big-b32-{short}-us-defaults"] = fmt_time(us_per_sample(case, "fastbp"))
        fig[f"big-b32-{short}-torch-defaults"] = fmt_ratio(ratio(case, "torch")) + "x"
        for mode, label in (("defaults", "defaults"), (1, "1thread")):
            fig[f"big-b128-{short}-torch-{label}"] = fmt_ratio(ratio(big128[mode, dtype],
                                                                     "torch")) + "x"
        fig[f"big-b128-{short}-us-defaults"] = fmt_time(
            us_per_sample(big128["defaults", dtype], "fastbp"))
    return fig


def _no_avx512_figures(one: dict, defaults: dict) -> dict:
    """The run with every library held to AVX2 (``bench/results/no_avx512_*``)."""
    both = [one, defaults]
    cells = [(case, report, ratio(case, "numpy")) for report in both for case in report["cases"]]
    ahead = [r for _, _, r in cells if r >= 1]
    behind = [f"{fmt_ratio(r)}x on {case['net']} at batch {case['batch_size']} in "
              f"{case['dtype']} ({_mode_label(report)})" for case, report, r in cells if r < 1]
    torch128 = [ratio(case, "torch") for case in select(both, WIDE_NETS, (128,))]
    fig = {
        "noavx-numpy-ahead": f"{len(ahead)} of {len(cells)}",
        "noavx-numpy-ahead-span": span(ahead, fmt_ratio, "x"),
        "noavx-numpy-behind": "; ".join(behind) or "none",
        "noavx-torch-b128-big": ratios(select(both, (BIG,), (128,)), "torch"),
        "noavx-torch-b128-over13": f"{sum(r >= 1.3 for r in torch128)} of {len(torch128)}",
        "noavx-torch-b512-wide": ratios(select(both, WIDE_NETS, (512,)), "torch"),
        "noavx-revision": one["fastbp_revision"],
    }
    for dtype, short in (("float32", "f32"), ("float64", "f64")):
        fig[f"noavx-torch-b128-784128-{short}"] = ratios(
            select(both, ("784-128-10",), (128,), (dtype,)), "torch")
    return fig


def _estimator_figures(report: dict) -> dict:
    fig = {}
    fits = report["results"]
    for solver, row in fits.items():
        fig[f"est-{solver}"] = fmt_ratio(row["sklearn_s"] / row["fastbp_s"]) + "x"
    fig["est-range"] = span([row["sklearn_s"] / row["fastbp_s"] for row in fits.values()],
                            fmt_ratio, "x")
    for call, row in report["calls"]["us_per_call"].items():
        name = call.replace("_", "-")
        fig[f"est-{name}"] = fmt_ratio(row["sklearn"] / row["fastbp"]) + "x"
        fig[f"est-{name}-us"] = f"{row['fastbp']:.0f}"
        fig[f"est-{name}-sklearn-us"] = f"{row['sklearn']:.0f}"
    fig["est-weight-diff"] = f"{report['calls']['max_weight_rel_diff']:.1e}"
    fig["est-loss-curve-diff"] = f"{max(r['max_loss_curve_rel_diff'] for r in fits.values()):.0e}"
    return fig


def _predict_figures(by_dtype: dict) -> dict:
    fig = {}
    for dtype, runs in by_dtype.items():
        short = "f32" if dtype == "float32" else "f64"
        per_row = [{name: c["us_per_row"] for name, c in run["contenders"].items()
                    if c.get("status") == "ok"} for run in runs]
        fig[f"predict-{short}-us"] = span([r["fastbp"] for r in per_row], fmt_time)
        for peer in ("numpy", "onnxruntime", "torch"):
            key = f"predict-{short}-{'onnx' if peer == 'onnxruntime' else peer}"
            fig[key] = span([r[peer] / r["fastbp"] for r in per_row], fmt_ratio, "x")
        fig[f"predict-{short}-onnx-us"] = span([r["onnxruntime"] for r in per_row], fmt_time)
    runs = [run for dtype_runs in by_dtype.values() for run in dtype_runs]
    one_row = [{name: c["us_per_call_one_row"] for name, c in run["contenders"].items()
                if c.get("status") == "ok"} for run in runs]
    fig["predict-one-row-us"] = span([r["fastbp"] for r in one_row], fmt_time)
    fig["predict-one-row-onnx"] = span([r["onnxruntime"] / r["fastbp"] for r in one_row],
                                       fmt_ratio, "x")
    fig["predict-concurrency"] = span([run["concurrency_speedup"] for run in runs],
                                      fmt_ratio, "x")
    return fig


#: bench/predict.py's bfloat16 runs (--contenders fastbp,fastbp_bf16,onnxruntime), by net
BF16_PREDICT = ("predict_bfloat16_784-256-128-10", "predict_bfloat16_784-128-10")
#: bench/compare.py --compute bfloat16 --contenders fastbp,torch (a partial run, saved under
#: these names): one thread, then defaults
BF16_COMPARE = ("compare_bfloat16_1thread", "compare_bfloat16_defaults")
#: the README's bfloat16 table: (net, batch size)
BF16_README_CASES = (("784-256-128-10", 128), ("1024-2048-2048-10", 128),
                     ("1024-2048-2048-10", 512))


def _bf16_predict_figures(results: dict) -> dict:
    """bf16-predict-<net>-us/-onnx/-f32 (throughput: µs a row, onnxruntime's and fastbp
    float32's time over bfloat16's), -one-row-us/-one-row-onnx/-one-row-f32, -error."""
    fig = {}
    for name in BF16_PREDICT:
        net = name.rsplit("_", 1)[1]
        runs = [{peer: c for peer, c in run["contenders"].items() if c.get("status") == "ok"}
                for run in results[name]]
        for key, field in (("", "us_per_row"), ("-one-row", "us_per_call_one_row")):
            fig[f"bf16-predict-{net}{key}-us"] = span([r["fastbp_bf16"][field] for r in runs],
                                                      fmt_time)
            for peer, short in (("onnxruntime", "onnx"), ("fastbp", "f32")):
                fig[f"bf16-predict-{net}{key}-{short}"] = span(
                    [r[peer][field] / r["fastbp_bf16"][field] for r in runs], fmt_ratio, "x")
        fig[f"bf16-predict-{net}-error"] = f"{max(r['fastbp_bf16']['max_error'] for r in runs):.0e}"
    return fig


def _other_figures(results: dict) -> dict:
    fig = {}
    for dtype, row in results["xor"]["results"].items():
        short = "f32" if dtype == "float32" else "f64"
        fig[f"xor-{short}-us"] = fmt_time(row["us_per_sample"]["fastbp"])
        fig[f"xor-{short}-fann"] = fmt_ratio(paired([t for t, _ in row["runs"]["fann"]],
                                                    [t for t, _ in row["runs"]["fastbp"]])) + "x"
    for name, short in (("sparse", "f64"), ("sparse_float32", "f32")):
        runs = results[name]["runs"]
        for setting, label in (("defaults", "defaults"), ("1 thread", "1thread")):
            fig[f"sparse-{short}-{label}"] = fmt_ratio(paired(
                [r["seconds"] for r in runs[f"{setting}|scikit-learn"]],
                [r["seconds"] for r in runs[f"{setting}|fastbp"]])) + "x"
    targets = results["targets"]
    t1 = targets["t1"]
    fig["targets-t1-us"] = fmt_time(t1["fastbp"]["us_per_sample"])
    fig["targets-t1-fann"] = fmt_ratio(paired(t1["fann"]["runs_us"], t1["fastbp"]["runs_us"])) + "x"
    fig["targets-t1-numpy"] = fmt_ratio(paired(t1["numpy"]["runs_us"],
                                               t1["fastbp"]["runs_us"])) + "x"
    for dtype, short in (("float32", "f32"), ("float64", "f64")):
        t3 = targets["t3"][dtype]
        fig[f"targets-t3-{short}-floor"] = fmt_ratio(paired(t3["results"]["fastbp"]["runs_us"],
                                                            t3["floor"]["runs_us"])) + "x"
        fig[f"targets-t3-{short}-torch"] = fmt_ratio(paired(t3["results"]["torch"]["runs_us"],
                                                            t3["results"]["fastbp"]["runs_us"])) + "x"
    fig["targets-t4"] = span(targets["t4"].values(), fmt_ratio, "x")
    memory = results["memory_float32"]
    fig["memory-growth"] = span([row[call] for row in memory
                                 for call in ("fit", "predict", "loss", "gradients")], fmt_time)
    return fig


def figures(results: dict | None = None) -> dict:
    """Every figure the README and the docs quote, by name.

    Parameters
    ----------
    results : dict, optional
        The reports as :func:`load` returns them (default: ``bench/results/``).

    Returns
    -------
    dict
        ``{name: text}``; ratios end in ``x`` (``"3.55-3.97x"``: a peer's time
        over fastbp's, the range over the cases named), times are in µs.
    """
    results = load() if results is None else results
    fig = _compare_figures(results["compare_1thread"], results["compare_defaults"])
    fig.update(_no_avx512_figures(results["no_avx512_1thread"], results["no_avx512_defaults"]))
    fig.update(_estimator_figures(results["estimators"]))
    fig.update(_predict_figures({"float32": results["predict_float32"],
                                 "float64": results["predict_float64"]}))
    fig.update(_bf16_predict_figures(results))
    fig.update(_other_figures(results))
    return fig


# -- the README ----------------------------------------------------------------


def readme_regions(results: dict | None = None) -> dict:
    """The README's generated regions, by name: ``claims`` and ``speed-table`` (markdown lines,
    each ending in a newline)."""
    results = load() if results is None else results
    fig = figures(results)
    defaults = results["compare_defaults"]
    claims = (
        f"Per-sample SGD on a 64-32-10 net takes {fig['fastbp-us-64-b1']} µs a sample, "
        f"{fig['b1-fann-64']} faster than FANN and {fig['b1-numpy-64']} faster than a NumPy "
        f"loop; minibatches of 32 train {fig['b32-torch']} faster than PyTorch on nets of "
        f"64-32-10 to 784-256-128-10; and `MLPClassifier` fits digits {fig['est-range']} "
        f"faster than scikit-learn's, with the same loss curve.")
    header = ["net", "batch", "fastbp µs a sample"] + [f"{PEER_NAMES[p]} ×" for p in PEERS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for net, batch in README_CASES:
        case = the_case(defaults, net, batch, "float32")
        cells = [net, str(batch), fmt_time(us_per_sample(case, "fastbp"))]
        cells += [fmt_ratio(r) if (r := ratio(case, peer)) else "–" for peer in PEERS]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"float32, one epoch of plain SGD, each library at its defaults on a "
                  f"{fig['compare-machine']} (`bench/compare.py` at {fig['compare-revision']}, "
                  f"{fig['compare-date']}); a peer's column is its time over fastbp's "
                  f"(above 1: fastbp is faster; –: not run)."]
    return {"claims": textwrap.fill(claims, 80) + "\n",
            "speed-table": "\n".join(lines[:-1] + [textwrap.fill(lines[-1], 80)]) + "\n",
            "bf16-table": bf16_table(results)}


def bf16_table(results: dict) -> str:
    """The README's mixed-precision table: fastbp's bfloat16 µs a sample, its float32 time
    over that, and PyTorch autocast's time over it, at one thread and at the defaults."""
    reports = [results[name] for name in BF16_COMPARE]
    header = ["net", "batch"]
    for report in reports:
        mode = _mode_label(report)
        header += [f"bfloat16 µs ({mode})", "fastbp float32 ×", "PyTorch autocast ×"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for net, batch in BF16_README_CASES:
        cells = [net, str(batch)]
        for report in reports:
            mixed = the_case(report, net, batch, "bfloat16")
            ours = us_per_sample(mixed, "fastbp")
            f32 = us_per_sample(the_case(report, net, batch, "float32"), "fastbp")
            torch = us_per_sample(mixed, "torch")
            cells += [fmt_time(ours), fmt_ratio(f32 / ours),
                      fmt_ratio(torch / ours) if torch else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    report = reports[0]
    note = (f"One epoch of plain SGD with bfloat16 products (`compute_dtype=\"bfloat16\"`; "
            f"PyTorch: `torch.autocast`), float32 weights; a column × is that time over "
            f"fastbp bfloat16's (above 1: bfloat16 fastbp is faster). `bench/compare.py "
            f"--compute bfloat16` at {report['fastbp_revision']}, {report['generated'][:10]}; "
            f"each case first checked against NumPy rounding every product's operands.")
    return "\n".join(lines + ["", textwrap.fill(note, 80)]) + "\n"


#: a region: its opening line, the generated lines, its closing line
_REGION = re.compile(r"(<!-- figures:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /figures:(?P=name) -->)",
                     re.S)


def readme_text_regions(text: str) -> dict:
    """The regions as the README holds them, by name."""
    return {m.group("name"): m.group("body") for m in _REGION.finditer(text)}


def render_readme(text: str, regions: dict) -> str:
    """``text`` with every region replaced by the generated one; a ValueError if one is missing."""
    missing = set(regions) - set(readme_text_regions(text))
    if missing:
        raise ValueError(f"the README has no region {', '.join(sorted(missing))}: add "
                         "<!-- figures:NAME --> and <!-- /figures:NAME --> lines")
    return _REGION.sub(lambda m: m.group(1) + regions[m.group("name")] + m.group(4), text)


# -- the documentation ---------------------------------------------------------


def _mode_label(report: dict) -> str:
    return "defaults" if report["threads"] == "defaults" else f"{report['threads']} thread"


def _table_cells(case: dict | None) -> list:
    if case is None:
        return ["–"] * (1 + len(PEERS))
    fastbp = us_per_sample(case, "fastbp")
    return [f"{fastbp:.3g}" if fastbp else "–"] + [
        f"{r:.2f}" if (r := ratio(case, peer)) else "–" for peer in PEERS]


def speed_table(one: dict, defaults: dict) -> str:
    """Every case of the two reports as an rst csv-table (fastbp's µs, each peer's multiple)."""
    header = ["net", "batch", "dtype"]
    for report in (one, defaults):
        header += [f"fastbp µs ({_mode_label(report)})"] + [f"{p} ×" for p in PEERS]
    keyed = {(c["net"], c["batch_size"], c["dtype"]): c for c in defaults["cases"]}
    rows = [header]
    for case in one["cases"]:
        key = (case["net"], case["batch_size"], case["dtype"])
        rows.append([key[0], str(key[1]), key[2]] + _table_cells(case)
                    + _table_cells(keyed.get(key)))
    lines = [".. csv-table:: µs per sample for fastbp, and each peer's time as a multiple of "
             "fastbp's (above 1: fastbp is faster)", "   :header-rows: 1",
             "   :class: speed-table", ""]
    lines += ["   " + ", ".join(f'"{cell}"' for cell in row) for row in rows]
    return "\n".join(lines) + "\n"


def speed_losses(one: dict, defaults: dict) -> str:
    """An rst list of the cells where a peer beats fastbp, grouped by case and peer."""
    groups: dict = {}
    for report in (one, defaults):
        for case in report["cases"]:
            for peer in PEERS:
                r = ratio(case, peer)
                if r is not None and r < 1:
                    key = (case["net"], case["batch_size"], peer)
                    groups.setdefault(key, []).append(
                        (r, f"{case['dtype']}, {_mode_label(report)}"))
    if not groups:
        return "fastbp is the fastest in every case of the last run.\n"
    lines = []
    for (net, batch, peer), found in groups.items():
        where = "; ".join(f"{fmt_ratio(r)}x ({label})" for r, label in found)
        lines.append(f"- {net}, batch {batch}: {PEER_NAMES[peer]} {where}")
    return "\n".join(lines) + "\n"


def estimators_table(report: dict) -> str:
    """``bench/estimators.py``'s fits as an rst list-table."""
    solvers = {"sgd": "sgd, batch 32, lr 0.1, momentum 0.9", "adam": "adam, batch 200, lr 1e-3"}
    lines = [".. list-table::", "   :header-rows: 1", ""]
    header = ["solver", "fastbp fit", "scikit-learn fit", "speed-up",
              "test accuracy (fastbp / sklearn)", "``n_iter_``"]
    rows = [header]
    for solver, row in report["results"].items():
        rows.append([solvers.get(solver, solver), f"{row['fastbp_s']:.3f} s",
                     f"{row['sklearn_s']:.3f} s",
                     fmt_ratio(row["sklearn_s"] / row["fastbp_s"]) + "x",
                     f"{row['fastbp_accuracy']:.4f} / {row['sklearn_accuracy']:.4f}",
                     f"{row['fastbp_n_iter']} / {row['sklearn_n_iter']}"])
    for row in rows:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines) + "\n"


def docs_snippets(results: dict | None = None) -> dict:
    """The documentation's generated files, ``{file name: rst text}``, for ``docs/``."""
    results = load() if results is None else results
    one, defaults = results["compare_1thread"], results["compare_defaults"]
    substitutions = "".join(f".. |{name}| replace:: {text}\n"
                            for name, text in sorted(figures(results).items()))
    note = ".. generated by tools/figures.py from bench/results/: do not edit\n\n"
    return {"figures.inc.rst": note + substitutions,
            "speed_table.inc.rst": note + speed_table(one, defaults),
            "speed_losses.inc.rst": note + speed_losses(one, defaults),
            "estimators_table.inc.rst": note + estimators_table(results["estimators"])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check the README's regions; exit 1 if they differ")
    parser.add_argument("--docs", type=Path, metavar="DIR",
                        help="write the documentation's snippets into DIR")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    results = load(args.results)
    if args.docs:
        for name, text in docs_snippets(results).items():
            (args.docs / name).write_text(text, encoding="utf-8")
        print(f"wrote {len(docs_snippets(results))} snippets to {args.docs}")
        return 0
    text = args.readme.read_text(encoding="utf-8")
    updated = render_readme(text, readme_regions(results))
    if args.check:
        if updated != text:
            print(f"{args.readme}'s figures differ from bench/results/: run python "
                  "tools/figures.py", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        args.readme.write_text(updated, encoding="utf-8")
        print(f"updated {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
