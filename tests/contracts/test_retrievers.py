"""The contract every registered signal (Retriever) keeps, run against each one the index builds."""

from __future__ import annotations

import numpy as np
import pytest

from polyseek.errors import UnknownNameError
from polyseek.retrieve.base import Retriever, SignalRun, signals
from polyseek.types import Query
from tests.fixtures import textured_image

SIGNALS = ["bm25", "dense", "instance"]  # built by a default index (no visual encoder configured)


def test_every_builtin_signal_is_registered_and_unknown_names_are_listed():
    from polyseek.retrieve import searcher  # noqa: F401  # registers the built-in signals

    assert {"bm25", "dense", "visual", "instance"} <= set(signals.names())
    with pytest.raises(UnknownNameError, match="choose from: .*bm25"):
        signals.get("bm42")


def _query_for(r: Retriever, root) -> Query:
    if "text" in r.query_modalities:
        return Query(text="solar panel efficiency report")
    from PIL import Image

    return Query(image=Image.open(root / "texture.jpg").convert("RGB"))


@pytest.mark.parametrize("name", SIGNALS)
def test_a_signal_returns_an_aligned_run_best_first(contract_index, name):
    idx, root, _ = contract_index
    r = idx.searcher().retrievers[name]
    assert r.name == name and r.query_modalities
    run = r.retrieve(_query_for(r, root), 5)
    assert isinstance(run, SignalRun) and run.signal == name
    assert 0 < len(run) <= 5
    assert len(run.unit_ids) == len(run.asset_ids) == len(run.scores)
    assert np.all(np.diff(run.scores) <= 1e-6), run.scores  # best first
    assert all(u.startswith(a + "#") for u, a in zip(run.unit_ids, run.asset_ids))
    assert set(run.extra) <= set(run.unit_ids)


@pytest.mark.parametrize("name", SIGNALS)
def test_a_signal_keeps_to_the_mask(contract_index, name):
    idx, root, _ = contract_index
    r = idx.searcher().retrievers[name]
    q = _query_for(r, root)
    full = r.retrieve(q, 50)
    allowed = np.asarray(full.unit_ids[1:], dtype=object)  # forbid its best unit
    masked = r.retrieve(q, 50, mask=allowed)
    assert full.unit_ids[0] not in masked.unit_ids
    assert set(masked.unit_ids) <= set(allowed.tolist())
    assert len(r.retrieve(q, 50, mask=np.asarray([], dtype=object))) == 0


@pytest.mark.parametrize("name", SIGNALS)
def test_a_signal_declines_queries_it_cannot_answer(contract_index, name):
    idx, _, _ = contract_index
    r = idx.searcher().retrievers[name]
    text_only, image_only = Query(text="solar"), Query(image=textured_image(3))
    assert r.accepts(text_only) == ("text" in r.query_modalities)
    assert r.accepts(image_only) == ("image" in r.query_modalities)
