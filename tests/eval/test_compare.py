"""Significance tests and named configs."""

from __future__ import annotations

import numpy as np
import pytest

from polyseek.config import SearchConfig
from polyseek.errors import UnknownNameError
from polyseek.eval import compare
from polyseek.eval.runner import ablation_configs, hits_to_run, load_config_file, named_config, resolve_configs
from polyseek.types import AssetRef, Hit, UnitRef


def test_identical_runs_give_p_one():
    a = np.random.default_rng(1).uniform(size=50)
    assert compare.randomization_test(a, a) == 1.0
    assert compare.paired_t_test(a, a) == 1.0


def test_clearly_better_run_is_significant():
    rng = np.random.default_rng(2)
    base = rng.uniform(0.2, 0.6, size=40)
    better = np.clip(base + rng.uniform(0.05, 0.25, size=40), 0, 1)
    p = compare.randomization_test(better, base)
    assert p < 0.05 and p == pytest.approx(1 / 10_001)
    assert compare.paired_t_test(better, base) < 0.05


def test_noise_is_not_significant_and_the_test_is_seeded():
    rng = np.random.default_rng(3)
    a = rng.uniform(size=30)
    b = a + rng.normal(0, 0.05, size=30)
    p1 = compare.randomization_test(a, b, seed=0)
    assert p1 == compare.randomization_test(a, b, seed=0)
    assert p1 > 0.05
    # agrees with scipy's exact-in-the-limit permutation test
    from scipy import stats

    ref = stats.permutation_test((a - b,), np.mean, permutation_type="samples", n_resamples=10_000,
                                 random_state=0).pvalue
    assert p1 == pytest.approx(ref, abs=0.03)


def test_compare_systems_marks_the_table():
    pq = {
        "bm25": {f"q{i}": {"ndcg@10": 0.3, "mrr@10": 0.5} for i in range(20)},
        "hybrid": {f"q{i}": {"ndcg@10": 0.3 + 0.01 * (i % 5 + 1), "mrr@10": 0.5} for i in range(20)},
    }
    sig = compare.compare_systems(pq, ["ndcg@10", "mrr@10"])
    assert sig["hybrid"]["ndcg@10"]["significant"] and sig["hybrid"]["ndcg@10"]["delta"] == pytest.approx(0.03)
    assert not sig["hybrid"]["mrr@10"]["significant"] and sig["hybrid"]["mrr@10"]["p_randomization"] == 1.0
    results = [{"name": "bm25", "metrics": {"ndcg@10": 0.3, "mrr@10": 0.5}},
               {"name": "hybrid", "metrics": {"ndcg@10": 0.33, "mrr@10": 0.5}}]
    table = compare.format_table(results, ["ndcg@10", "mrr@10"], sig)
    assert "0.3300*" in table and "0.5000*" not in table and "p < 0.05" in table


def test_named_configs():
    sig = ["bm25", "dense", "visual"]
    assert named_config("bm25", sig) == SearchConfig(signals=("bm25",))
    assert named_config("hybrid", sig) == SearchConfig() and SearchConfig().fusion == "dbsf"
    assert named_config("hybrid-rrf", sig).fusion == "rrf" and named_config("hybrid-dbsf", sig).fusion == "dbsf"
    assert named_config("hybrid-text", sig).signals == ("bm25", "dense")
    assert named_config("hybrid-combsum", sig).fusion == "combsum:minmax"
    assert named_config("hybrid-zscore", sig).fusion == "combsum:zscore"
    assert named_config("hybrid-combmnz-rank", sig).fusion == "combmnz:rank"
    with pytest.raises(UnknownNameError, match="choose from: bm25, dense, visual, hybrid"):
        named_config("hybird", sig)
    abl = ablation_configs(["bm25", "dense"])
    assert {n: c.signals for n, c in abl.items()} == {"all": ("bm25", "dense"), "-bm25": ("dense",),
                                                       "-dense": ("bm25",)}


def test_config_files(tmp_path):
    (tmp_path / "a.json").write_text('{"signals": ["bm25", "dense"], "fusion": "wsum", "weights": {"bm25": 0.7}}')
    (tmp_path / "b.toml").write_text('[configs.fast]\nsignals = ["bm25"]\n[configs.deep]\ndepth = 300\n')
    assert load_config_file(tmp_path / "a.json") == {
        "a": SearchConfig(signals=("bm25", "dense"), fusion="wsum", weights=(("bm25", 0.7),))}
    cfgs = resolve_configs(["bm25", str(tmp_path / "b.toml")], ["bm25"])
    assert list(cfgs) == ["bm25", "fast", "deep"] and cfgs["deep"].depth == 300


def _hit(doc, score, rank):
    return Hit(rank=rank, score=score, asset=AssetRef(doc, f"/{doc}", "text"), unit=UnitRef(f"{doc}#0", "record"))


def test_hits_to_run_keeps_the_engine_order_under_ties():
    from polyseek.eval.metrics import sorted_docs

    hits = [_hit("a", 1.0, 1), _hit("b", 1.0, 2), _hit("a", 0.9, 3), _hit("c", 0.5, 4), _hit("d", 0.7, 5)]
    run = hits_to_run(hits)
    assert [d for d, _ in sorted_docs(run)] == ["a", "b", "c", "d"]
    assert run["a"] == 1.0 and run["c"] == 0.5
