"""The segmented keyword index scores exactly as a full rebuild and as bm25s itself, through adds, changes,
deletions and merges; it survives save/load, and an index run grows it by a segment instead of rebuilding it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from polyseek.errors import ConfigError
from polyseek.store import keyword as kwmod
from polyseek.store.keyword import KeywordIndex

WORDS = ("retrieval index query ranking document search engine neural sparse dense vector token stem "
         "language model corpus relevance feedback precision recall evaluation wavelet signal image pixel "
         "camera river mountain forest ocean city bridge train station market garden").split()
QUERIES = ["neural ranking model", "sparse retrieval", "image search engine", "river bridge city", "precision recall",
           "the of and", "query query expansion", "garden market", "vector", "zzz unknown words"]


def corpus(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    out = []
    for _ in range(n):
        k = int(rng.integers(0, 14))  # some units have no text at all (images without OCR)
        out.append(" ".join(rng.choice(WORDS, size=k, p=p)) + (" the of" if k % 3 == 0 else ""))
    return out


def reference_scores(docs: dict[str, str], query: str, k1: float = kwmod.K1, b: float = kwmod.B) -> dict[str, float]:
    """bm25s itself, built at once over the live documents: the reference the segments must equal."""
    import bm25s
    import Stemmer

    ids = list(docs)
    tok = bm25s.tokenize([docs[i] for i in ids], stopwords="en", stemmer=Stemmer.Stemmer("english"),
                         show_progress=False)
    bm = bm25s.BM25(k1=k1, b=b)
    bm.index(tok, show_progress=False)
    q = [t for t in kwmod.TermStemmer().tokens(query) if t in bm.vocab_dict]
    if not q:
        return {}
    s = bm.get_scores(q)
    return {i: float(v) for i, v in zip(ids, s) if v > 0}


def index_scores(kw: KeywordIndex, query: str) -> dict[str, float]:
    s = kw.scores(query)
    if s is None:
        return {}
    return {u: float(v) for u, v, live in zip(kw.unit_ids, s, kw.live) if live and v > 0}


def assert_same(kw: KeywordIndex, docs: dict[str, str]) -> None:
    assert len(kw) == len(docs)
    assert sorted(kw.id_index()) == sorted(docs)
    for q in QUERIES:
        got, want = index_scores(kw, q), reference_scores(docs, q)
        assert got.keys() == want.keys(), q
        for u in want:
            assert got[u] == pytest.approx(want[u], rel=1e-5, abs=1e-6), (q, u)


def test_segments_through_adds_changes_and_deletes_equal_a_full_rebuild(tmp_path, monkeypatch):
    monkeypatch.setattr(kwmod, "MAX_SEGMENTS", 3)  # reach the merge of small segments in a few steps
    rng = np.random.default_rng(1)
    texts = corpus(400, seed=0)
    docs = {f"a{i}#0": t for i, t in enumerate(texts[:150])}
    hashes = {f"a{i}": "h0" for i in range(150)}
    kw = KeywordIndex.build(list(docs), [u.split("#")[0] for u in docs], list(docs.values()), 1, hashes)
    assert_same(kw, docs)
    nxt, version = 150, 1
    for step in range(6):
        version += 1
        # add 30 new assets, change 10 (new text, same unit id), delete 8
        new = {f"a{i}#0": texts[i] for i in range(nxt, nxt + 30)}
        nxt += 30
        live_assets = sorted({u.split("#")[0] for u in docs})
        changed = list(rng.choice(live_assets, 10, replace=False))
        deleted = [a for a in rng.choice(live_assets, 8, replace=False) if a not in changed]
        for a in changed:
            new[f"{a}#0"] = corpus(1, seed=1000 + step * 50 + int(a[1:]))[0] + " changed"
            hashes[a] = f"h{version}"
        for a in deleted:
            docs.pop(f"{a}#0")
            hashes.pop(a)
        hashes.update({u.split("#")[0]: "h0" for u in new if u.split("#")[0] not in hashes})
        docs.update(new)
        kw = kw.apply(set(changed) | set(deleted), list(new), [u.split("#")[0] for u in new], list(new.values()),
                      hashes, version)
        assert len(kw.segments) <= 3
        assert_same(kw, docs)
        # and the saved index loads back the same
        kw.save(tmp_path / "keyword")
        back = KeywordIndex.load(tmp_path / "keyword")
        assert back is not None and back.version == version and back.hashes == hashes
        assert_same(back, docs)
    full = KeywordIndex.build(list(docs), [u.split("#")[0] for u in docs], list(docs.values()), version)
    for q in QUERIES:
        a, b = index_scores(kw, q), index_scores(full, q)
        assert a.keys() == b.keys()
        assert all(a[u] == pytest.approx(b[u], rel=1e-5) for u in a)
    # only the files of the newest generation are left on disk
    names = {p.name for p in (tmp_path / "keyword").iterdir()}
    meta = json.loads((tmp_path / "keyword" / "meta.json").read_text())
    assert {f"{s}.npz" for s in meta["order"]} <= names
    assert len([n for n in names if n.endswith(".npz")]) == len(meta["order"])


def test_a_third_dead_merges_everything_without_dead_rows():
    texts = corpus(60, seed=3)
    ids = [f"a{i}#0" for i in range(60)]
    kw = KeywordIndex.build(ids, [u[:-2] for u in ids], texts, 1, {u[:-2]: "h" for u in ids})
    gone = {f"a{i}" for i in range(25)}
    kw2 = kw.apply(gone, [], [], [], {u[:-2]: "h" for u in ids if u[:-2] not in gone}, 2)
    assert len(kw2.segments) == 1 and kw2.live.all() and len(kw2.unit_ids) == 35
    assert_same(kw2, {u: t for u, t in zip(ids, texts) if u[:-2] not in gone})
    assert len(kw) == 60  # the old object is untouched (readers may hold it)


def test_k1_and_b_are_query_time_parameters(tmp_path):
    docs = {f"u{i}": t for i, t in enumerate(corpus(80, seed=3))}
    kw = KeywordIndex.build(list(docs), list(docs), list(docs.values()), 1)
    for k1, b in [(1.5, 0.75), (1.2, 0.75), (0.9, 0.4), (2.0, 0.0)]:
        for q in QUERIES[:5]:
            s = kw.scores(q, k1=k1, b=b)
            got = {u: float(v) for u, v in zip(kw.unit_ids, s) if v > 0}
            want = reference_scores(docs, q, k1=k1, b=b)
            assert got.keys() == want.keys() and all(got[u] == pytest.approx(want[u], rel=1e-5) for u in want)
    # the pair changes the ranking (length normalisation), and an index saved under other defaults still loads
    assert not np.allclose(kw.scores("neural ranking", k1=1.5, b=0.75), kw.scores("neural ranking", k1=0.9, b=0.0))
    folder = tmp_path / "keyword"
    kw.save(folder)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "k1": 1.5, "b": 0.75}))  # written before k1/b moved out
    again = KeywordIndex.load(folder)
    assert again is not None and np.array_equal(again.scores("vector"), kw.scores("vector"))
    with pytest.raises(ConfigError, match="0 <= b <= 1"):
        kw.scores("vector", k1=1.2, b=1.5)


def test_other_formats_and_broken_files_are_not_trusted(tmp_path):
    folder = tmp_path / "keyword"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"version": 3}))  # format 1 (bm25s files)
    assert KeywordIndex.load(folder) is None and KeywordIndex.saved_version(folder) is None
    kw = KeywordIndex.build(["a#0"], ["a"], ["river bridge"], 4, {"a": "h"})
    kw.save(folder)
    assert KeywordIndex.saved_version(folder) == 4
    seg = json.loads((folder / "meta.json").read_text())["order"][0]
    (folder / f"{seg}.npz").write_bytes(b"not an npz")
    assert KeywordIndex.load(folder) is None


def test_index_runs_grow_the_keyword_index_by_segments(tmp_path):
    import polyseek
    from polyseek.config import SearchConfig

    rows = [{"id": f"r{i}", "text": t} for i, t in enumerate(corpus(120, seed=5))]
    p = tmp_path / "rows.jsonl"

    def write(rs):
        p.write_text("".join(json.dumps(r) + "\n" for r in rs))

    write(rows)
    idx = polyseek.open(tmp_path / "idx")
    idx.add([p], records=True)
    meta = json.loads((tmp_path / "idx" / "keyword" / "meta.json").read_text())
    assert len(meta["order"]) == 1
    rows = rows[10:] + [{"id": "new1", "text": "river bridge city neural"}, {"id": "new2", "text": "garden"}]
    rows[0] = {**rows[0], "text": "sparse retrieval changed"}
    write(rows)
    rep = idx.add([p], records=True)
    assert rep.removed == 10 and rep.indexed == 3
    meta = json.loads((tmp_path / "idx" / "keyword" / "meta.json").read_text())
    assert len(meta["order"]) == 2  # one segment added, the first not rewritten
    docs = {f"{r['id']}#rec": r["text"] for r in rows}
    kw = KeywordIndex.load(tmp_path / "idx" / "keyword")
    assert kw.version == idx.folder.store.version
    assert {u.split("#")[0] for u in kw.id_index()} == {r["id"] for r in rows}
    for q in QUERIES:
        got = {u.split("#")[0]: s for u, s in index_scores(kw, q).items()}
        want = {u.split("#")[0]: s for u, s in reference_scores(docs, q).items()}
        assert got.keys() == want.keys() and all(got[u] == pytest.approx(want[u], rel=1e-5) for u in want)
    assert idx.search("river bridge city neural", config=SearchConfig(signals=("bm25",)), k=1)[0].asset.id == "new1"


def test_search_config_defaults_are_the_index_defaults():
    from polyseek.config import SearchConfig

    assert (SearchConfig().bm25_k1, SearchConfig().bm25_b) == (kwmod.K1, kwmod.B)
