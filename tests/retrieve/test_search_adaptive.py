"""Adaptive ranking through the engine on a small real index (real store, BM25, MiniLM): routing, refinement,
candidate priors, adaptive fusion, the dynamic cutoff, suggestions and "more like this", plus the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import polyseek
from polyseek.config import IndexConfig, IngestConfig, SearchConfig
from polyseek.errors import ConfigError, NotFoundError, QueryError

TOPICS = {
    "tea": ["Green tea is brewed at 80 degrees for two minutes.", "Black tea needs boiling water and four minutes.",
            "Oolong tea leaves unfurl over several infusions.", "Matcha is powdered green tea whisked in a bowl."],
    "bike": ["Oil the bicycle chain every few hundred kilometres.", "True a bicycle wheel by tightening spokes.",
             "Brake pads on a bicycle wear out and squeal.", "Pump bicycle tyres to the pressure on the sidewall."],
    "reef": ["Coral reefs are built by colonies of polyps.", "Warm water bleaches coral reefs as polyps expel algae.",
             "Reef fish shelter among the branches of coral.", "Coral reefs protect coasts from storm waves."],
    "bread": ["Sourdough bread rises with a wild yeast starter.", "Knead bread dough until it is smooth and elastic.",
              "Bake sourdough bread in a hot covered pot.", "Feed the sourdough starter with flour and water daily."],
    "stars": ["The night sky shows the Milky Way far from city lights.", "Orion is a winter constellation of bright stars.",
              "A telescope gathers light from faint galaxies.", "Planets wander against the fixed stars of the night sky."],
}
DOCS = [(f"{t}{i}", text) for t, texts in TOPICS.items() for i, text in enumerate(texts)]


@pytest.fixture(scope="module")
def idx(tmp_path_factory):
    root = tmp_path_factory.mktemp("adaptive")
    src = root / "docs.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in DOCS))
    index = polyseek.open(root / "idx", IndexConfig(instance=False, ingest=IngestConfig(ocr=False)))
    index.add([src], records=True)
    return index


def test_route_is_explained_and_off_restores_plain_search(idx):
    hits = idx.search("sourdough starter", k=5)
    route = hits[0].extra["route"]
    assert route["signals"] == ["bm25", "dense"] and route["granularity"] == "document"
    plain = idx.search("sourdough starter", k=5, config=SearchConfig(route="off"))
    assert "route" not in plain[0].extra
    assert [h.asset.id for h in plain] == [h.asset.id for h in hits]  # same signals here: same ranking
    with pytest.raises(QueryError, match="auto, off"):
        idx.search("tea", config=SearchConfig(route="sideways"))


def test_refinements_priors_and_fusions_answer_and_keep_signal_names(idx):
    base = idx.search("green tea brewing", k=8, config=SearchConfig(route="off"))
    for cfg in [SearchConfig(refine=("rm3",)), SearchConfig(refine=("rocchio",)), SearchConfig(refine=("gqr",)),
                SearchConfig(refine=("rm3", "rocchio", "gqr")), SearchConfig(prior="cpn"),
                SearchConfig(fusion="dbsf"), SearchConfig(adaptive=True), SearchConfig(fusion="dbsf", adaptive=True)]:
        hits = idx.search("green tea brewing", k=8, config=cfg)
        assert hits[0].asset.id.startswith("tea"), cfg
        assert set(hits[0].signals) <= {"bm25", "dense"}
    rm3 = idx.search("green tea brewing", k=8, config=SearchConfig(refine=("rm3",), signals=("bm25",)))
    plain = idx.search("green tea brewing", k=8, config=SearchConfig(signals=("bm25",)))
    # expansion terms from the feedback docs reach tea documents that share no query word but "tea"
    assert rm3[0].signals["bm25"] != plain[0].signals["bm25"]
    assert {h.asset.id for h in base}  # the baseline ran
    with pytest.raises(ConfigError, match="does not use weights"):
        idx.search("tea", config=SearchConfig(fusion="combsum", adaptive=True))
    with pytest.raises(QueryError, match="unknown prior"):
        idx.search("tea", config=SearchConfig(prior="hub"))


def test_dynamic_cutoff(idx):
    junk = idx.search("qwxzvbn", k=10, config=SearchConfig(cutoff="auto"))
    assert len(junk) <= 2  # nothing stands out: at most one or two hits (none when the dense floor drops them), not k
    real = idx.search("coral reef polyps", k=10, config=SearchConfig(cutoff="auto"))
    assert real[0].asset.id.startswith("reef") and len(real) < 10
    assert all(h.extra["confidence"] >= real[0].extra["confidence"] * 0.7 for h in real)
    uncut = idx.search("coral reef polyps", k=10)  # the library default applies no cutoff (only the dense floor)
    assert len(real) < len(uncut) <= 10
    assert len(idx.search("coral reef polyps", k=10, config=SearchConfig(cutoff="1.0"))) >= 1


def test_suggestions_isolate_clusters(idx):
    q = polyseek.types.Query(text="water", k=20)
    hits = idx.search_query(q)
    sugg = idx.suggest(q, hits)
    assert 3 <= len(sugg) <= 5
    seen = set()
    for s in sugg:
        assert s["query"].startswith("water ") and s["add"] and "water" not in s["add"]
        assert not (set(s["add"]) & seen)  # each suggestion adds its own words
        seen |= set(s["add"])
        assert set(s["ids"]) <= {h.asset.id for h in hits}
    assert sum(s["size"] for s in sugg) <= len(hits)


def test_more_like_this(idx):
    hits = idx.similar("bike0", k=5)
    ids = [h.asset.id for h in hits]
    assert "bike0" not in ids
    assert sum(i.startswith("bike") for i in ids[:3]) >= 2
    assert hits[0].extra["similar_to"]["signals"] == ["dense", "bm25"]
    with pytest.raises(NotFoundError):
        idx.similar("nope")


@pytest.mark.slow  # six CLI processes, each loading MiniLM
def test_cli_cutoff_route_suggest_and_similar(idx):
    def cli(*args):
        p = subprocess.run([sys.executable, "-m", "polyseek.serve.cli.main", *args, "--index", str(idx.path)],
                           capture_output=True, text=True, timeout=900)
        return p

    p = cli("search", "qwxzvbn", "--json")
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["hits"]) <= 2
    p = cli("search", "night sky stars", "--json", "--suggest")
    out = json.loads(p.stdout)
    assert out["hits"][0]["asset"]["id"].startswith("stars")
    assert out["route"]["signals"] == ["bm25", "dense"] and "suggestions" in out
    p = cli("search", "night sky stars", "--json", "--cutoff", "none", "-k", "7")
    assert len(out["hits"]) < len(json.loads(p.stdout)["hits"]) <= 7
    p = cli("search", "night sky", "--cutoff", "2")
    assert p.returncode == 2 and "(0, 1]" in p.stderr
    p = cli("similar", "reef1", "--json", "-k", "3")
    assert p.returncode == 0, p.stderr
    assert [h["asset"]["id"] for h in json.loads(p.stdout)["hits"]][0].startswith("reef")
    p = cli("similar", "missing-asset")
    assert p.returncode == 1 and "missing-asset" in p.stderr
