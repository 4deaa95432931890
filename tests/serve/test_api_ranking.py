"""HTTP API of issue 11 on the session server: route, cutoff and suggestions on POST /search, and POST /similar."""

from __future__ import annotations


def test_search_carries_route_cutoff_and_suggestions(client):
    r = client.post("/search", json={"text": "green tea", "k": 10, "suggest": True})
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["route"]["signals"] and isinstance(res["route"]["why"], list)
    assert res["hits"][0]["extra"]["route"] == res["route"]
    assert isinstance(res["suggestions"], list)
    for s in res["suggestions"]:
        assert s["query"].startswith("green tea ") and s["size"] == len(s["ids"])
    cut = client.post("/search", json={"text": "qwxzvbn", "k": 10, "cutoff": "auto"}).json()
    assert len(cut["hits"]) <= 2
    full = client.post("/search", json={"text": "qwxzvbn", "k": 5, "route": "off"}).json()
    assert "route" not in full or full["route"] is None
    bad = client.post("/search", json={"text": "tea", "cutoff": "lots"})
    assert bad.status_code == 400 and "cutoff" in bad.json()["error"]["message"]
    bad = client.post("/search", json={"text": "tea", "rerank": "colbert"})
    assert bad.status_code == 400 and "choose from" in bad.json()["error"]["message"]


def test_similar(client):
    r = client.post("/similar", json={"asset_id": "notes", "k": 3})
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["id"] == "notes" and res["hits"]
    assert all(h["asset"]["id"] != "notes" for h in res["hits"])
    assert res["hits"][0]["extra"]["similar_to"]["asset"] == "notes"
    assert client.post("/similar", json={"asset_id": "no-such-asset"}).status_code == 404
    assert client.post("/similar", json={"asset_id": "notes", "k": 0}).status_code == 422
