"""PinnedRows: display rows by offset at one store version, with in-memory low-cardinality columns."""

from __future__ import annotations

import numpy as np

from polyseek.store.base import EncodedAsset
from polyseek.store.lance import LanceStore
from polyseek.types import Asset, Unit

COLS = ["id", "asset_id", "kind", "text", "page", "bbox", "t0", "t1", "asset_type", "path"]


def _store(tmp_path, n=300):
    store = LanceStore(tmp_path / "lance", {"v": 4})
    batch = []
    for i in range(n):
        units = [Unit(id=f"a{i}#0", kind="record", text=f"text {i}")]
        if i % 3 == 0:
            units.append(Unit(id=f"a{i}#p1", kind="page", text=f"page of {i}", page=1, bbox=(0, 0, 10, 20)))
        batch.append(EncodedAsset(Asset(id=f"a{i}", path=f"/d/f{i % 7}.jsonl", type="record", hash=str(i)), units,
                                  {"v": np.ones((len(units), 4), np.float32)}))
    store.write(batch[: n // 2])
    store.write(batch[n // 2:])
    return store


def test_rows_by_offset_match_the_sql_lookup_after_deletes(tmp_path):
    store = _store(tmp_path)
    store.delete_assets([f"a{i}" for i in range(0, 300, 10)])
    ids = store.scan_units(["id"]).column("id").to_pylist()
    rows = store.pinned_rows(np.array(ids, dtype=object))
    assert rows is not None and {"kind", "asset_type", "path"} <= set(rows.memo)
    want = [ids[5], ids[-1], ids[len(ids) // 2], "a3#p1", "a10#0"]  # a10 was deleted
    got = rows(want, COLS)
    sql = store.get_units(want, COLS)
    assert set(got) == set(sql) and "a10#0" not in got
    for u in got:
        assert got[u] == sql[u]
    assert got["a3#p1"]["bbox"] == [0.0, 0.0, 10.0, 20.0] and got["a3#p1"]["page"] == 1


def test_null_columns_are_not_read_and_stale_offsets_fall_back(tmp_path):
    store = LanceStore(tmp_path / "lance", {"v": 4})
    store.write([EncodedAsset(Asset(id=f"r{i}", path="/d/r.jsonl", type="record", hash=str(i)),
                              [Unit(id=f"r{i}#rec", kind="record", text=f"t{i}")], {"v": np.ones((1, 4), np.float32)})
                 for i in range(50)])
    ids = store.scan_units(["id"]).column("id").to_pylist()
    rows = store.pinned_rows(np.array(ids, dtype=object))
    assert {"page", "bbox", "t0", "t1"} <= set(rows.memo)
    got = rows(["r7#rec"], COLS)
    assert got["r7#rec"]["text"] == "t7" and got["r7#rec"]["page"] is None and got["r7#rec"]["path"] == "/d/r.jsonl"
    # Ids in the wrong order (a stale list): the offsets point at other rows, which are noticed and re-read by id.
    rows = store.pinned_rows(np.array(ids[::-1], dtype=object))
    assert rows(["r7#rec", "r8#rec"], COLS)["r8#rec"]["text"] == "t8"
    # Ids of an older version: after an append the old offsets hold; after a delete, moved rows are read by id.
    store.write([EncodedAsset(Asset(id="new", path="/d/n.jsonl", type="record", hash="n"),
                              [Unit(id="new#rec", kind="record", text="fresh")], {"v": np.ones((1, 4), np.float32)})])
    rows = store.pinned_rows(np.array(ids, dtype=object))
    assert rows(["r3#rec", "r49#rec"], COLS)["r49#rec"]["text"] == "t49"
    store.delete_assets(["r0", "r1"])
    rows = store.pinned_rows(np.array(ids, dtype=object))
    got = rows(["r0#rec", "r2#rec", "r49#rec", "new#rec"], COLS)
    assert set(got) >= {"r2#rec", "r49#rec", "new#rec"} and "r0#rec" not in got
    assert got["r2#rec"]["text"] == "t2" and got["r49#rec"]["text"] == "t49" and got["new#rec"]["text"] == "fresh"
