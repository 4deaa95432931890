"""The contract of the Store: atomic batches, typed reads (no SQL from callers), deletes, failures."""

from __future__ import annotations

import numpy as np
import pytest

from polyseek.store.base import EncodedAsset
from polyseek.store.lance import LanceStore
from polyseek.types import Asset, Filters, Unit

STORES = {"lance": lambda folder: LanceStore(folder, {"vec_text": 4})}


def _asset(aid: str, n: int, type_: str = "text", path: str | None = None) -> EncodedAsset:
    units = [Unit(id=f"{aid}#u{i}", kind="passage" if i else "page", text=f"{aid} text {i}", page=1) for i in range(n)]
    vec = np.eye(4, dtype=np.float32)[np.arange(n) % 4]
    return EncodedAsset(Asset(id=aid, path=path or f"/data/{aid}.txt", type=type_, hash=f"h-{aid}",
                              source=path or f"/data/{aid}.txt"), units, {"vec_text": vec})


@pytest.fixture(params=sorted(STORES))
def store(request, tmp_path):
    return STORES[request.param](tmp_path / "store")


def test_written_batches_read_back_through_typed_methods(store):
    store.write([_asset("a", 3), _asset("b", 2, "image", "/pics/b.jpg")])
    assert store.count_units() == 5
    assert store.count_units(path="/data/a.txt") == 3
    assert set(store.asset_index()) == {"a", "b"}
    assert set(store.asset_index(types=["image"])) == {"b"}
    assert set(store.asset_index(exclude_types=["image"])) == {"a"}
    assert set(store.asset_index(paths=["/pics/b.jpg"])) == {"b"}
    assert set(store.asset_index(source="/data/a.txt")) == {"a"}
    t = store.scan_units(["id"], kinds=["page"])
    assert sorted(t.column("id").to_pylist()) == ["a#u0", "b#u0"]
    assert sorted(store.scan_units(["id"], asset_ids=["b"]).column("id").to_pylist()) == ["b#u0", "b#u1"]
    assert sorted(store.unit_ids_matching(Filters(type=("image",))).tolist()) == ["b#u0", "b#u1"]
    assert store.unit_ids_matching(Filters()) is None
    assert set(store.get_units(["a#u1", "zz"], ["id", "text"])) == {"a#u1"}
    assert sorted(r["id"] for r in store.units_of_asset("b", ["id"])) == ["b#u0", "b#u1"]


def test_a_rewritten_asset_replaces_its_units_in_one_commit(store):
    store.write([_asset("a", 3)])
    v = store.version
    store.write([_asset("a", 1)])
    assert store.version > v
    assert store.count_units() == 1
    assert store.asset_hashes() == {"a": "h-a"}


def test_quotes_in_values_are_data_not_sql(store):
    store.write([_asset("it's", 2, path="/data/it's.txt")])
    assert store.count_units(path="/data/it's.txt") == 2
    assert set(store.asset_index(paths=["/data/it's.txt"])) == {"it's"}
    assert store.delete_assets(["it's"]) == 1
    assert store.count_units() == 0 and store.get_asset("it's") is None


def test_failures_are_recorded_replaced_and_cleared(store):
    store.record_failures([("/x.pdf", "broken PDF"), ("/y.jpg", "truncated")])
    store.record_failures([("/x.pdf", "still broken")])
    assert [(p, r) for p, r, _ in store.failures_list()] == [("/x.pdf", "still broken"), ("/y.jpg", "truncated")]
    store.clear_failures(["/x.pdf"])
    assert [p for p, _, _ in store.failures_list()] == ["/y.jpg"]
