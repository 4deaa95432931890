"""Pure functions of adaptive ranking: RM3, Rocchio, GQR, candidate priors, the dynamic cutoff and the router."""

from __future__ import annotations

import numpy as np
import pytest

from polyseek.errors import ConfigError, UnknownNameError
from polyseek.retrieve import calibrate, cutoff, refine, route
from polyseek.types import Query


def _unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# ---------------------------------------------------------------------------- RM3


def test_rm3_weights_by_hand():
    # Two feedback docs with first-pass scores 3 and 1 -> P(d|q) = 0.75, 0.25.
    fb = [(["solar", "panel", "panel", "cell"], 3.0), (["solar", "wind"], 1.0)]
    w = refine.rm3_terms(["solar", "energi"], fb, fb_terms=2, orig_weight=0.5)
    # P(t|R): solar .75*.25 + .25*.5 = .3125; panel .75*.5 = .375; cell .1875; wind .125 -> top 2: panel, solar
    z = 0.375 + 0.3125
    assert w == pytest.approx({"solar": 0.5 * 0.5 + 0.5 * 0.3125 / z, "energi": 0.25, "panel": 0.5 * 0.375 / z})
    assert sum(w.values()) == pytest.approx(1.0)


def test_rm3_without_feedback_is_the_query():
    assert refine.rm3_terms(["a", "a", "b"], []) == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert refine.rm3_terms(["a"], [(["x"], 0.0)]) == pytest.approx({"a": 1.0})


# ---------------------------------------------------------------------------- Rocchio and GQR


def test_rocchio_moves_towards_feedback_and_keeps_norm():
    q = _unit([1.0, 0.0, 0.0])
    fb = _unit([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    out = refine.rocchio(q, fb, alpha=1.0, beta=1.0)
    assert np.linalg.norm(out) == pytest.approx(1.0, abs=1e-6)
    assert out[1] == pytest.approx(out[0], abs=1e-6)  # halfway: alpha = beta, centroid = e2
    assert np.array_equal(refine.rocchio(q, np.zeros((0, 3))), q)


def test_gqr_pulls_the_query_towards_what_the_guide_prefers():
    rng = np.random.default_rng(0)
    cand = _unit(rng.normal(size=(40, 16)))
    q = _unit(rng.normal(size=16))
    guide = np.zeros(40)
    guide[7] = 10.0  # the complementary signal is sure about candidate 7
    before = cand @ q
    out = refine.gqr(q, cand, guide, steps=20, consensus=False)
    after = cand @ out
    assert np.linalg.norm(out) == pytest.approx(np.linalg.norm(q), rel=1e-5)
    assert (after[7] - after.mean()) > (before[7] - before.mean())
    assert int(np.argmax(after)) == 7
    # a constant guide carries no information: the query is left as it is
    assert np.array_equal(refine.gqr(q, cand, np.ones(40), steps=5), q)
    assert np.array_equal(refine.gqr(q, cand[:1], guide[:1]), q)  # one candidate: nothing to refine


def test_unknown_refinement_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="choose from: rm3, rocchio, gqr"):
        refine.check_refiners(["rm4"])


# ---------------------------------------------------------------------------- candidate priors (CPN)


def test_candidate_prior_finds_the_hub_and_cpn_demotes_it():
    rng = np.random.default_rng(1)
    common = np.eye(64, dtype=np.float32)[0]
    docs = _unit(0.8 * common + _unit(rng.normal(size=(200, 64))))  # units share a direction...
    docs[0] = common  # ...and this one is it: a hub, closer to every unit than they are to each other
    rows = np.arange(1, 200)
    lp = calibrate.candidate_prior(docs, docs[rows], query_rows=rows, k=5, temp=0.05)
    assert lp.shape == (200,)
    assert int(np.argmax(lp)) == 0 and lp[0] > 0
    assert np.median(lp) < 0.5  # ordinary units win about their share
    q = docs[17]
    s = docs @ q
    s[0] = s[17] + 0.01  # the hub edges out the true match on raw score
    fixed = calibrate.cpn_scores(s, lp, weight=1.0, temp=0.05)
    assert int(np.argmax(s)) == 0 and int(np.argmax(fixed)) == 17


# ---------------------------------------------------------------------------- dynamic cutoff


def test_parse_cutoff():
    assert cutoff.parse_cutoff("none") == ("none", None)
    assert cutoff.parse_cutoff("auto") == ("auto", cutoff.AUTO_RATIO)
    assert cutoff.parse_cutoff("0.5") == ("ratio", 0.5)
    for bad in ("1.5", "0", "lots"):
        with pytest.raises(ConfigError, match="auto, none|in \\(0, 1\\]"):
            cutoff.parse_cutoff(bad)


def test_keep_count_relative_threshold_cap_and_weak_evidence():
    conf = [0.9, 0.85, 0.8, 0.3, 0.2]
    assert cutoff.keep_count(conf, ratio=0.8) == 3
    assert cutoff.keep_count(conf, ratio=0.8, max_k=2) == 2
    assert cutoff.keep_count(conf, ratio=0.1) == 5
    assert cutoff.keep_count(conf, ratio=0.8, evidence=2.0, min_z=4.0, weak_k=1) == 1
    assert cutoff.keep_count(conf, ratio=0.8, evidence=6.0, min_z=4.0) == 3
    assert cutoff.keep_count([], ratio=0.5) == 0


def test_confidence_places_scores_in_each_signals_window():
    stats = cutoff.signal_stats({"bm25": [10.0, 2.0, 1.0, 1.0], "dense": [0.5, 0.5]})
    assert stats["dense"][1] == 0  # constant: no window, contributes nothing
    c_top = cutoff.confidence({"bm25": 10.0, "dense": 0.5}, stats)
    c_low = cutoff.confidence({"bm25": 1.0}, stats)
    assert 0 <= c_low < c_top <= 0.5  # averaged over both signals; dense adds 0


# ---------------------------------------------------------------------------- routing


def test_route_rules():
    avail = ["bm25", "dense", "visual", "instance"]
    r = route.route_query(Query(text="solar panel efficiency"), avail, {"page": 10, "block": 40, "image": 3})
    assert r.signals == ("bm25", "dense") and r.granularity == "document"
    assert any("visual signal off" in w for w in r.why)
    r = route.route_query(Query(text="a photo of a red car"), avail, {"block": 40})
    assert "visual" in r.signals
    r = route.route_query(Query(text="sunset"), avail, {"image": 50, "region": 400, "passage": 3})
    assert "visual" in r.signals  # an image collection
    r = route.route_query(Query(text="What is the licence of the dataset?"), avail, {"page": 10, "block": 40})
    assert r.granularity == "page"
    r = route.route_query(Query(text='error "E1234" in v1.2.3'), avail, {"passage": 5})
    assert r.weights == {"bm25": 2.0}
    r = route.route_query(Query(image="x.png", bbox=(0, 0, 5, 5)), avail, {"image": 5})
    assert r.signals == ("visual", "instance") and r.granularity == "region"
    assert r.to_dict()["why"]


def test_page_key():
    assert route.page_key("doc#p3b2", "doc") == "doc#p3"
    assert route.page_key("doc#p3", "doc") == "doc#p3"
    assert route.page_key("doc#p3f1", "doc") == "doc#p3"
    assert route.page_key("notes#c4", "notes") == "notes"
