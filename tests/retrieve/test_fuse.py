"""Fusion functions against ranx's published expectations and ranx's definitions."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from polyseek.errors import ConfigError, UnknownNameError
from polyseek.retrieve import fuse as F


def _expected() -> dict:
    """ranx's fusion test expectations, copied into tests/eval/reference (its README says from where)."""
    p = Path(__file__).resolve().parents[1] / "eval" / "reference" / "ranx_fusion_expected.json"
    return json.loads(p.read_text())


def _per_query(runs: dict, q: str) -> dict:
    return {name: {d: float(s) for d, s in run.get(q, {}).items()} for name, run in runs.items()}


def test_rrf_matches_ranx_expected():
    exp = _expected()
    for q, want in exp["rrf"]["expected"].items():
        got = F.rrf(_per_query(exp["runs"], q), k=exp["rrf"]["k"])
        assert set(got) == set(want)
        for d, v in want.items():
            assert got[d] == pytest.approx(v, abs=1e-12)
        assert [d for d, _ in F.ranked(got)] == exp["rrf"]["expected_order"][q]


def test_combsum_and_wsum_match_ranx_expected():
    exp = _expected()
    names = list(exp["runs"])
    for q, want in exp["comb_sum"]["expected"].items():
        got = F.fuse(_per_query(exp["runs"], q), method="combsum")
        assert got == pytest.approx({d: float(v) for d, v in want.items()})
    weights = dict(zip(names, exp["wsum"]["weights"]))
    for q, want in exp["wsum"]["expected"].items():
        runs = _per_query(exp["runs"], q)
        assert F.wsum(runs, weights=weights) == pytest.approx(want, abs=1e-12)
        # the same weights given as a list aligned with the runs, and as (name, w) pairs
        assert F.fuse(runs, method="wsum", weights=exp["wsum"]["weights"]) == pytest.approx(want, abs=1e-12)
        assert F.fuse(runs, method="wsum", weights=tuple(weights.items())) == pytest.approx(want, abs=1e-12)


RUNS = {"r1": {"a": 3.0, "b": 1.0, "c": 2.0}, "r2": {"a": 0.5, "d": 0.7}}


# Numbers computed with ranx 0.3.21 `fuse([r1, r2], norm=..., method=...)` on RUNS (wsum weights 0.3, 0.7).
RANX = {
    ("borda", "combsum"): {"a": 1.75, "d": 1.25, "c": 1.125, "b": 0.875},
    ("borda", "combmnz"): {"a": 3.5, "d": 2.5, "c": 2.25, "b": 1.75},
    ("borda", "combmax"): {"a": 1.0, "d": 1.0, "c": 0.75, "b": 0.5},
    ("borda", "wsum"): {"a": 0.825, "d": 0.775, "c": 0.4875, "b": 0.4125},
}


@pytest.mark.parametrize("key", sorted(RANX))
def test_borda_matches_ranx_numbers(key):
    norm, method = key
    w = [0.3, 0.7] if method == "wsum" else None
    assert F.fuse(RUNS, method=method, norm=norm, weights=w) == pytest.approx(RANX[key], abs=1e-12)


def test_normalisations_follow_ranx_definitions():
    s = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 6.0}
    assert F.norm_minmax(s) == pytest.approx({"a": 0.4, "b": 0.0, "c": 0.2, "d": 1.0})
    assert F.norm_max(s) == pytest.approx({"a": 0.5, "b": 1 / 6, "c": 1 / 3, "d": 1.0})
    # sum: shifted by the min, divided by the shifted sum
    assert F.norm_sum(s) == pytest.approx({"a": 2 / 8, "b": 0.0, "c": 1 / 8, "d": 5 / 8})
    z = F.norm_zscore(s)
    mean, std = 3.0, math.sqrt(((0) + 4 + 1 + 9) / 4)
    assert z == pytest.approx({d: (v - mean) / std for d, v in s.items()})
    assert F.norm_rank(s) == pytest.approx({"d": 1.0, "a": 0.75, "c": 0.5, "b": 0.25})
    # constant scores do not divide by zero
    assert F.norm_minmax({"a": 1.0, "b": 1.0}) == {"a": 0.0, "b": 0.0}
    assert F.norm_zscore({"a": 2.0}) == {"a": 0.0}


def test_methods_on_small_runs():
    runs = {"x": {"a": 0.5, "b": 0.2}, "y": {"b": 0.4, "c": 0.9}}
    assert F.combsum(runs) == pytest.approx({"a": 0.5, "b": 0.6, "c": 0.9})
    assert F.combmnz(runs) == pytest.approx({"a": 0.5, "b": 1.2, "c": 0.9})
    assert F.combmax(runs) == pytest.approx({"a": 0.5, "b": 0.4, "c": 0.9})
    assert F.wsum(runs, weights={"x": 2.0}) == pytest.approx({"a": 1.0, "b": 0.8, "c": 0.9})
    # weighted RRF: w / (k + rank)
    assert F.rrf(runs, k=1, weights={"x": 2.0, "y": 1.0}) == pytest.approx({"a": 1.0, "b": 2 / 3 + 1 / 3, "c": 0.5})


def test_ties_are_broken_deterministically():
    runs = {"x": {"a": 1.0, "b": 1.0, "c": 1.0}}
    # trec_eval's order: equal scores by doc id descending
    assert [d for d, _ in F.ranked(runs["x"])] == ["c", "b", "a"]
    assert F.rrf(runs, k=0) == pytest.approx({"c": 1.0, "b": 0.5, "a": 1 / 3})


def test_empty_and_single_runs():
    assert F.fuse({}) == {}
    assert F.fuse({"x": {}, "y": {}}) == {}
    assert F.fuse({"x": {"a": 2.0, "b": 1.0}}, method="rrf", k=60) == pytest.approx({"a": 1 / 61, "b": 1 / 62})


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UnknownNameError, match="choose from: combmax, combmnz, combsum, dbsf, rrf, wsum"):
        F.fuse(RUNS, method="combsm")
    with pytest.raises(UnknownNameError, match="minmax"):
        F.fuse(RUNS, norm="minnax")
    with pytest.raises(ConfigError, match="2 runs"):
        F.wsum(RUNS, weights=[1.0, 2.0, 3.0])
    assert set(F.fusions.names()) == {"rrf", "combsum", "combmnz", "combmax", "wsum", "dbsf"}


def test_dbsf_is_qdrant_mean_plus_minus_three_std():
    # Qdrant's DBSF: each run mapped from [mean - 3 std, mean + 3 std] onto [0, 1], then summed.
    r1 = {"a": 3.0, "b": 1.0, "c": 2.0}  # mean 2, population std sqrt(2/3)
    sd = (2 / 3) ** 0.5
    want1 = {d: (s - (2 - 3 * sd)) / (6 * sd) for d, s in r1.items()}
    assert F.norm_dbsf(r1) == pytest.approx(want1)
    assert want1["b"] == pytest.approx(0.5 - 1 / (6 * sd))  # below the mean, above 0: not min-max
    r2 = {"a": 0.5, "d": 0.7}  # mean 0.6, std 0.1
    got = F.fuse({"r1": r1, "r2": r2}, method="dbsf")
    assert got == pytest.approx({"a": want1["a"] + 1 / 3, "b": want1["b"], "c": want1["c"], "d": 2 / 3})
    # weights scale each normalised run; a constant run normalises to 0.5 instead of dividing by zero
    assert F.dbsf({"r1": r1, "r2": r2}, weights={"r2": 0.0}) == pytest.approx({**want1, "d": 0.0})
    assert F.norm_dbsf({"x": 1.0, "y": 1.0}) == pytest.approx({"x": 0.5, "y": 0.5})


def test_dbsf_counts_the_zeros_of_a_run_that_ran_out_of_matches():
    # BM25 matched one unit of the 100 asked for: the other 99 score 0, so the match stands far above its list
    alone = F.norm_dbsf({"rare": 4.0}, n=100)
    mean, std = 0.04, (3.96 ** 2 / 100 + 99 * 0.04 ** 2 / 100) ** 0.5
    assert alone["rare"] == pytest.approx((4.0 - (mean - 3 * std)) / (6 * std)) and alone["rare"] > 2
    assert F.norm_dbsf({"rare": 4.0}) == {"rare": 0.5}  # without n: no spread, Qdrant's 0.5
    dense = {f"d{i}": 0.6 - 0.002 * i for i in range(100)}  # a full dense run: n changes nothing
    assert F.norm_dbsf(dense, n=100) == pytest.approx(F.norm_dbsf(dense))
    fused = F.dbsf({"bm25": {"rare": 4.0}, "dense": dense}, sizes={"bm25": 100})
    assert max(fused, key=fused.get) == "rare"
    plain = F.dbsf({"bm25": {"rare": 4.0}, "dense": dense})
    assert max(plain, key=plain.get) == "d0"  # what sizes prevents: the unique match under a dense neighbour


def test_adaptive_weights_favour_the_run_whose_top_stands_out():
    peaked = {f"d{i}": (10.0 if i == 0 else 1.0 + i * 0.001) for i in range(50)}
    flat = {f"d{i}": 0.5 - i * 0.001 for i in range(50)}
    w = F.adaptive_weights({"kw": peaked, "dense": flat})
    assert w["kw"] > 1.0 > w["dense"]
    assert w["dense"] >= 0.25  # the floor keeps a flat signal in play
    assert F.adaptive_weights({"a": {"x": 1.0}, "b": {}}) == {"a": 1.0, "b": 1.0}  # nothing to judge: equal


@pytest.mark.slow
def test_against_ranx_on_random_runs():
    """Every method x normalisation against ranx itself (numba compiles for about a minute the first time)."""
    ranx = pytest.importorskip("ranx")
    rng = random.Random(7)
    docs = [f"d{i:02d}" for i in range(30)]
    qs = [f"q{i}" for i in range(5)]
    raw = {
        name: {q: {d: round(rng.uniform(-2, 5), 6) for d in rng.sample(docs, rng.randint(3, 20))} for q in qs}
        for name in ("r1", "r2", "r3")
    }
    methods = {"rrf": "rrf", "combsum": "sum", "combmnz": "mnz", "combmax": "max", "wsum": "wsum"}
    norms = {"minmax": "min-max", "zscore": "zmuv", "max": "max", "sum": "sum", "rank": "rank", "borda": "borda"}
    weights = [0.2, 0.5, 0.3]
    for ours, theirs in methods.items():
        for onorm, tnorm in norms.items():
            if (ours, onorm) == ("rrf", "borda"):
                continue  # borda gives every unretrieved doc the same score: rrf then ranks ties arbitrarily in ranx
            params = {"weights": weights} if ours == "wsum" else None
            want = ranx.fuse([ranx.Run(r) for r in raw.values()], norm=tnorm, method=theirs, params=params)
            for q in qs:
                got = F.fuse(_per_query(raw, q), method=ours, norm=onorm, weights=weights if ours == "wsum" else None)
                assert got == pytest.approx(dict(want[q]), abs=1e-9), (ours, onorm, q)


def test_method_string_can_carry_its_normalisation():
    runs = {"x": {"a": 10.0, "b": 0.0}, "y": {"a": 0.0, "b": 0.5, "c": 1.0}}
    assert F.fuse(runs, method="combsum:minmax") == F.fuse(runs, method="combsum", norm="minmax")
    assert F.fuse(runs, method="combsum:minmax") == pytest.approx({"a": 1.0, "b": 0.5, "c": 1.0})
    with pytest.raises(UnknownNameError):
        F.fuse(runs, method="combsum:nope")


@pytest.mark.parametrize("method", ["combsum", "combmnz", "combmax"])
def test_a_method_that_ignores_weights_rejects_them(method):
    """CombSUM/MNZ/MAX have no weights (Fox & Shaw 1993): weights given to them are an error, not silently dropped."""
    with pytest.raises(ConfigError, match="does not use weights.*rrf, wsum"):
        F.fuse(RUNS, method=method, weights={"x": 2.0})
    assert F.fuse(RUNS, method=method, weights={}) == F.fuse(RUNS, method=method)  # empty weights mean none


def test_registered_methods_say_whether_they_weigh():
    assert {n for n in F.fusions.names() if F.fusions.get(n).weighted} == {"rrf", "wsum", "dbsf"}


def test_exact_evidence_wins_a_fused_tie():
    """RRF gives 1/(k+1) to a doc only BM25 finds by a rare word and to an unrelated dense-only nearest
    neighbour: the exact match goes first, whatever the ids; then the doc more runs found."""
    runs = {"bm25": {"zz-target": 7.5}, "dense": {"aa-unrelated": 0.31, "bb": 0.2}}
    fused = F.rrf(runs)
    assert fused["zz-target"] == fused["aa-unrelated"]
    assert [d for d, _ in F.fused_order(fused, runs)] == ["zz-target", "aa-unrelated", "bb"]
    runs = {"dense": {"x": 0.9}, "visual": {"x": 0.1}, "bm25": {}}
    assert [d for d, _ in F.fused_order({"x": 1.0, "a": 1.0}, {**runs, "dense": {"x": 0.9, "a": 0.8}})] == ["x", "a"]
    assert [d for d, _ in F.fused_order({"b": 2.0, "a": 1.0}, runs)] == ["b", "a"]  # scores first
