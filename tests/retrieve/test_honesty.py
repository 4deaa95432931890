"""Honest result lists: the dense-only floor and the no-visual-encoder warning (pure functions)."""

from __future__ import annotations

from polyseek.retrieve.honesty import dense_floor, drop_weak_dense_tail, visual_warnings
from polyseek.types import AssetRef, Hit, UnitRef


def _hit(rank, signals, type_="text", kind="passage"):
    return Hit(rank=rank, score=1.0 / rank, asset=AssetRef(id=f"a{rank}", path=f"/x/a{rank}", type=type_),
               unit=UnitRef(id=f"a{rank}#0", kind=kind), signals=signals)


def test_dense_only_hits_below_the_floor_are_dropped_and_ranks_renumbered():
    hits = [_hit(1, {"bm25": 3.0, "dense": 0.05}), _hit(2, {"dense": 0.4}), _hit(3, {"dense": 0.1}),
            _hit(4, {"instance": 40.0}), _hit(5, {"dense": 0.02})]
    kept = drop_weak_dense_tail(hits, 0.15)
    assert [h.asset.id for h in kept] == ["a1", "a2", "a4"]  # keyword or instance evidence keeps a weak dense score
    assert [h.rank for h in kept] == [1, 2, 3]
    assert drop_weak_dense_tail(hits, None) == hits  # an encoder without a calibrated floor keeps everything
    assert dense_floor("minilm") == 0.15 and dense_floor("clip:/some/folder") is None


def test_visual_warning_only_when_text_targets_images_without_a_visual_encoder():
    count = lambda: 3  # noqa: E731
    image_hit = [_hit(1, {"bm25": 1.0}, type_="image", kind="image")]
    text_hit = [_hit(1, {"bm25": 1.0})]
    (w,) = visual_warnings(has_text=True, has_visual_encoder=False, image_assets=count, type_filter=(), hits=image_hit)
    assert "no visual encoder" in w and "3 image(s)" in w
    assert visual_warnings(has_text=True, has_visual_encoder=False, image_assets=count, type_filter=("image",), hits=[])
    assert not visual_warnings(has_text=True, has_visual_encoder=True, image_assets=count, type_filter=(), hits=image_hit)
    assert not visual_warnings(has_text=True, has_visual_encoder=False, image_assets=count, type_filter=(), hits=text_hit)
    assert not visual_warnings(has_text=False, has_visual_encoder=False, image_assets=count, type_filter=(),
                               hits=image_hit)
    assert not visual_warnings(has_text=True, has_visual_encoder=False, image_assets=lambda: 0,
                               type_filter=("image",), hits=[])
