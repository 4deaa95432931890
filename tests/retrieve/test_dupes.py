"""Near-duplicates: resized/recompressed and brightened copies are grouped with their originals, different images
are not, a hash collision is rejected by local-feature verification; multi-index hashing equals brute force."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageEnhance

import polyseek
from polyseek.config import IndexConfig, IngestConfig
from polyseek.retrieve.dupes import is_near_duplicate
from polyseek.store.hashes import hamming, near_pairs
from tests.fixtures import textured_image


def smooth_with_noise(seed: int, size=(320, 240)) -> Image.Image:
    """One smooth pattern (an 8x8 random field, upsampled: it fixes the low frequencies, hence the pHash) under
    fine noise drawn from `seed` (which the local features see): the same hash, different pictures."""
    w, h = size
    field = np.random.default_rng(0).integers(0, 256, (8, 8), np.uint8)
    base = np.asarray(Image.fromarray(field).resize((w, h), Image.Resampling.BICUBIC), float)
    fine = np.random.default_rng(seed).integers(0, 256, (h // 2, w // 2), np.uint8)
    noise = np.asarray(Image.fromarray(fine).resize((w, h), Image.Resampling.NEAREST), float)
    arr = np.clip(base * 0.35 + noise * 0.65, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([arr] * 3, axis=2))


@pytest.fixture(scope="module")
def dupe_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("dupes")
    textured_image(30).save(root / "harbour.jpg", quality=92)
    textured_image(30).resize((240, 180), Image.Resampling.BILINEAR).save(root / "harbour_small.jpg", quality=55)
    textured_image(31).save(root / "market.png")
    ImageEnhance.Brightness(textured_image(31)).enhance(1.2).save(root / "market_bright.jpg", quality=90)
    textured_image(32).save(root / "station.jpg", quality=92)
    smooth_with_noise(1).save(root / "ramp_a.png")
    smooth_with_noise(2).save(root / "ramp_b.png")
    idx = polyseek.open(tmp_path_factory.mktemp("didx") / "idx", IndexConfig(ingest=IngestConfig(ocr=False)))
    assert not idx.add([root]).failed
    return idx, root


def test_groups_edited_copies_and_nothing_else(dupe_index):
    idx, _ = dupe_index
    rep = idx.dupes()
    assert rep.verified and rep.assets == 7
    groups = sorted(g.assets for g in rep.groups)
    assert groups == [["harbour", "harbour_small"], ["market", "market_bright"]]  # the larger copy first
    for g in rep.groups:
        (p,) = g.pairs
        assert p.confirmed and p.inliers >= 20 and p.cover > 0.9 and 0.8 < p.extent < 1.25
    # The two noisy patterns share a hash neighbourhood but not their content: proposed, then rejected.
    assert rep.candidates == 3
    assert [(p.a, p.b, p.confirmed) for p in rep.rejected] == [("ramp_a", "ramp_b", False)]
    assert rep.rejected[0].hamming <= 10


def test_is_near_duplicate(dupe_index, tmp_path):
    idx, root = dupe_index
    copy = textured_image(32).resize((300, 225))
    assert is_near_duplicate(idx, copy) == "station"
    assert is_near_duplicate(idx, textured_image(33)) is None
    assert is_near_duplicate(idx, smooth_with_noise(3)) is None  # hash neighbour, different picture


def test_multi_index_hashing_equals_brute_force():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**63, 400, dtype=np.uint64)
    flips = np.uint64(1) << rng.integers(0, 64, (400, 12)).astype(np.uint64)
    near = base.copy()
    for k in range(12):  # copies 0..12 bits away from their originals
        near[k * 30:] ^= flips[k * 30:, k]
    h = np.concatenate([base, near])
    for threshold in (0, 3, 8, 10):
        got = {tuple(r) for r in near_pairs(h, threshold).tolist()}
        d = hamming(h[:, None], h[None, :])
        i, j = np.nonzero(np.triu(d <= threshold, 1))
        assert got == {(a, b, int(d[a, b])) for a, b in zip(i.tolist(), j.tolist())}
        assert len(got) > 0


def test_cli_dupes_json(dupe_index):
    idx, _ = dupe_index
    # --no-verify keeps the subprocess fast (confirmation is tested above) and shows what the hash alone proposes.
    p = subprocess.run([sys.executable, "-m", "polyseek.serve.cli.main", "dupes", "--json", "--no-verify",
                        "--index", str(idx.path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["verified"] is False and out["assets"] == 7
    assert sorted(g["assets"] for g in out["groups"]) == [["harbour", "harbour_small"], ["market", "market_bright"],
                                                          ["ramp_a", "ramp_b"]]
    p = subprocess.run([sys.executable, "-m", "polyseek.serve.cli.main", "dupes", "--threshold", "40",
                        "--index", str(idx.path)], capture_output=True, text=True)
    assert p.returncode == 2 and "40" in p.stderr


def test_skip_duplicates_at_ingest(tmp_path):
    import polyseek
    from PIL import ImageEnhance

    from tests.fixtures import textured_image

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    textured_image(21, size=(400, 300)).save(first / "orig.png")
    copy = ImageEnhance.Brightness(textured_image(21, size=(400, 300)).resize((300, 225))).enhance(1.15)
    copy.save(second / "copy.jpg", quality=80)
    textured_image(22, size=(400, 300)).save(second / "other.png")
    idx = polyseek.open(tmp_path / "idx")
    idx.add([first])
    rep = idx.add([second], skip_duplicates=True)
    assert [(p.rsplit("/", 1)[-1], a) for p, a in rep.duplicates] == [("copy.jpg", "orig")]
    assert rep.indexed == 1 and "duplicate" in rep.summary()
    assert {a for a in idx.store.asset_index()} == {"orig", "other"}
