"""The rerank stage through the engine: the depth/budget driver, a real sentence-transformers CrossEncoder (tiny,
random, built at test time), the LLM reranker against an OpenAI-compatible server on a real socket, and
geometric verification as a reranker."""

from __future__ import annotations

import json

import pytest

import polyseek
from polyseek.config import IndexConfig, IngestConfig, SearchConfig
from polyseek.errors import ConfigError, PolyseekError, QueryError, UnknownNameError
from polyseek.retrieve.rerank import Candidate, Doc, ScoringReranker, get_reranker, rerank_candidates
from polyseek.retrieve.rerank.llm import LLMError, parse_order
from tests.retrieve.llm_server import LLMServer

DOCS = [
    ("d1", "Solar panels convert sunlight into electricity with photovoltaic cells."),
    ("d2", "Wind turbines turn the kinetic energy of wind into electricity."),
    ("d3", "The efficiency of solar panels drops when the panels get hot."),
    ("d4", "Sourdough bread needs a starter, flour, water and salt."),
    ("d5", "Coral reefs are built by colonies of tiny animals called polyps."),
    ("d6", "Panel discussions at the energy conference covered solar subsidies."),
]


@pytest.fixture(scope="module")
def text_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("rr")
    src = root / "docs.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in DOCS))
    idx = polyseek.open(root / "idx", IndexConfig(instance=False, ingest=IngestConfig(ocr=False)))
    idx.add([src], records=True)
    return idx


class _ByLength(ScoringReranker):
    """A reranker whose scores are known: longer text first. Counts its calls."""

    name = "by-length"
    batch_size = 2

    def __init__(self):
        self.calls = 0

    def score(self, query, docs):
        self.calls += 1
        return [float(len(d.text)) for d in docs]


def test_driver_reorders_and_keeps_first_pass_scores():
    texts = dict(DOCS)
    cands = [Candidate(a, f"{a}#0", 1.0 - i / 10, {"bm25": 5.0 - i}) for i, a in enumerate(texts)]
    docs = [Doc(c.unit_id, c.asset_id, texts[c.asset_id]) for c in cands]
    rr = _ByLength()
    out, info = rerank_candidates(rr, None, cands, docs)
    assert info["scored"] == 6 and rr.calls == 3  # three batches of two
    assert [c.asset_id for c in out] == sorted(texts, key=lambda a: (-len(texts[a]), list(texts).index(a)))
    for c in out:
        before = next(x for x in cands if x.asset_id == c.asset_id)
        assert c.signals["fused"] == before.score and c.signals["bm25"] == before.signals["bm25"]
        assert c.score == c.signals["rerank:by-length"] == len(texts[c.asset_id])
    # a budget of 0 ms still scores the first batch, then stops: the rest keeps its fused order, below
    out, info = rerank_candidates(_ByLength(), None, cands, docs, budget_ms=0)
    assert info["scored"] == 2
    assert [c.asset_id for c in out[2:]] == [c.asset_id for c in cands[2:]]
    assert all(out[i].score > out[i + 1].score for i in range(5))


def test_unknown_reranker_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="choose from: cross-encoder, geometric, llm, llm-pointwise, none"):
        get_reranker("colbert:x")
    with pytest.raises(ConfigError, match="needs a model"):
        get_reranker("cross-encoder")
    with pytest.raises(ConfigError, match="llm:MODEL@BASE_URL"):
        get_reranker("llm:some-model")
    with pytest.raises(ConfigError, match="takes no argument"):
        get_reranker("none:x")


def test_cross_encoder_from_a_local_folder(text_index, tmp_path):
    from sentence_transformers import CrossEncoder

    from tests.tiny_cross_encoder import build_tiny_cross_encoder

    folder = build_tiny_cross_encoder(tmp_path / "ce")
    cfg = SearchConfig(rerank=f"cross-encoder:{folder}", rerank_depth=5)
    hits = text_index.search("solar panel efficiency", k=6, config=cfg)
    first = text_index.search("solar panel efficiency", k=6)
    # the reference: the same model scoring (query, text) pairs directly
    ref = CrossEncoder(str(folder), device="cpu")
    texts = dict(DOCS)
    n = min(5, len(first))  # the dense-only floor may leave fewer than k hits
    assert n >= 3
    want = ref.predict([("solar panel efficiency", texts[h.asset.id]) for h in first[:n]])
    order = [first[i].asset.id for i in sorted(range(n), key=lambda i: (-float(want[i]), i))]
    assert [h.asset.id for h in hits if h.asset.id in set(order)] == order
    before = {h.asset.id: h for h in first}
    for h in [h for h in hits[:5] if h.asset.id in before]:
        assert {"rerank:cross-encoder", "fused", *before[h.asset.id].signals} <= set(h.signals)
        assert h.signals["fused"] == pytest.approx(before[h.asset.id].score)
        assert h.extra["rerank"]["reranker"] == "cross-encoder"
    assert all("rerank:cross-encoder" not in h.signals for h in hits[5:])
    with pytest.raises(ConfigError, match="cannot load cross-encoder"):
        text_index.search("x", config=SearchConfig(rerank=f"cross-encoder:{tmp_path / 'missing'}"))


def test_llm_listwise_and_pointwise_over_http(text_index, monkeypatch):
    monkeypatch.setenv("POLYSEEK_LLM_API_KEY", "sk-test")
    with LLMServer() as srv:
        q = "wind electricity"
        hits = text_index.search(q, k=6, config=SearchConfig(rerank=f"llm:tiny-model@{srv.url}", rerank_depth=6))
        # the server ranks by query-word overlap: d2 has both words, d1 one ("electricity"), the rest none
        assert [h.asset.id for h in hits[:2]] == ["d2", "d1"]
        assert hits[0].signals["rerank:llm"] > hits[1].signals["rerank:llm"]
        req = srv.requests[-1]
        assert req["body"]["model"] == "tiny-model" and req["auth"] == "Bearer sk-test"
        assert "[1]" in req["body"]["messages"][-1]["content"]
        n = len(srv.requests)
        hits = text_index.search(q, k=4, config=SearchConfig(rerank=f"llm-pointwise:tiny-model@{srv.url}",
                                                             rerank_depth=3))
        assert len(srv.requests) - n == 3  # one request per candidate
        assert hits[0].asset.id == "d2"
        srv.httpd.fail = True
        with pytest.raises(LLMError, match="answered 500"):
            text_index.search("solar", config=SearchConfig(rerank=f"llm:other@{srv.url}"))
    assert issubclass(LLMError, PolyseekError)


def test_parse_order():
    assert parse_order("[3, 1, 2]", 3) == [2, 0, 1]
    assert parse_order("3 > 1 > 3 > 9", 3) == [2, 0]  # repeats and out-of-range dropped
    with pytest.raises(LLMError, match="no ranking"):
        parse_order("I cannot rank these", 3)


def test_geometric_verification_as_a_reranker(tmp_path):
    from tests.fixtures import textured_image

    root = tmp_path / "photos"
    root.mkdir()
    for i in range(4):
        textured_image(i).save(root / f"photo{i}.jpg", quality=92)
    idx = polyseek.open(tmp_path / "idx", IndexConfig(ingest=IngestConfig(ocr=False)))
    idx.add([root])
    crop = textured_image(2).crop((60, 40, 300, 220))
    hits = idx.search(image=crop, k=4, config=SearchConfig(rerank="geometric", rerank_depth=4))
    assert hits[0].asset.path.endswith("photo2.jpg")
    assert hits[0].signals["rerank:geometric"] >= 8 and "fused" in hits[0].signals
    with pytest.raises(QueryError, match="needs an image query"):
        idx.search("photo", config=SearchConfig(rerank="geometric", signals=("bm25",)))
