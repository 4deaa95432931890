"""Local features computed ahead (while the next file is extracted) are the ones computed at encode time."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from polyseek.indexer import FeaturePrefetch, _local_features
from polyseek.types import Asset, Extraction, Unit


def _page(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (320, 420), "white")
    d = ImageDraw.Draw(im)
    for _ in range(60):
        x, y = rng.integers(0, 300), rng.integers(0, 400)
        colour = tuple(int(v) for v in rng.integers(0, 200, 3))
        d.rectangle([x, y, x + rng.integers(4, 30), y + rng.integers(3, 12)], fill=colour)
    return im


def _extraction(name: str, seed: int) -> Extraction:
    units = [Unit(f"{name}#p{i}", "page", page=i + 1, image=_page(seed + i)) for i in range(3)]
    units.append(Unit(f"{name}#b0", "block", text="no pixels here"))
    return Extraction(Asset(name, f"/x/{name}.pdf", "pdf"), units)


def test_prefetched_features_equal_features_computed_at_encode_time():
    kinds = {"page", "figure"}
    plain = [_extraction("a", 0), _extraction("b", 10)]
    ahead = [_extraction("a", 0), _extraction("b", 10)]
    pre = FeaturePrefetch()
    try:
        pre.submit(ahead[0])  # only the first one ahead: the other is computed at encode time
        got = _local_features(ahead, kinds, pre)
        assert pre.take(ahead[0]) is None  # taken once
    finally:
        pre.close()
    want = _local_features(plain, kinds)
    assert [[uid for uid, _ in per] for per in got] == [[uid for uid, _ in per] for per in want]
    assert [uid for uid, _ in got[0]] == ["a#p0", "a#p1", "a#p2"]
    for per_got, per_want in zip(got, want):
        for (_, fg), (_, fw) in zip(per_got, per_want):
            assert len(fg) > 20
            np.testing.assert_array_equal(fg.desc, fw.desc)
            np.testing.assert_array_equal(fg.xy, fw.xy)


def test_forgotten_extraction_is_not_taken():
    ex = _extraction("c", 20)
    pre = FeaturePrefetch()
    pre.submit(ex)
    pre.forget(ex)  # its file failed after this part: the part is dropped
    assert pre.take(ex) is None
    pre.close()


def test_pages_get_sift_at_512_px_and_photos_get_corners_too():
    """Per-kind feature options: a PDF page render is analysed at 512 px and keeps SIFT alone (ingest speed); a
    photo also gets the corner keypoints of the hard-crop last chance."""
    from polyseek.indexer import _unit_features

    big = _page(30).resize((640, 840))
    page = _unit_features(Unit("d#p1", "page", page=1, image=big))
    photo = _unit_features(Unit("img", "image", image=big))
    assert page.n_corners == 0 and abs(page.work_scale - 840 / 512) < 0.01
    assert photo.n_corners > 0 and abs(photo.work_scale - 840 / 640) < 0.01
