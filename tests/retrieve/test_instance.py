"""Instance search on images drawn at test time: crops under transforms find their source with the right box."""

from __future__ import annotations

import io
import json
import os
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from polyseek.encode.local import LocalFeatures, extract_local_features, mirror_features, rootsift
from polyseek.errors import QueryError
from polyseek.store.instance import InstanceIndex
from polyseek.store import instance_segments as instance_store
from tests.fixtures import iou, textured_image as draw_image

W, H = 360, 270
CROP = (110, 60, 160, 130)  # x, y, w, h in the source image


def jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.fixture(scope="module")
def images() -> dict[str, Image.Image]:
    return {f"img{i}#img": draw_image(i) for i in range(6)}


@pytest.fixture(scope="module")
def index(images, tmp_path_factory) -> InstanceIndex:
    ii = InstanceIndex.open(tmp_path_factory.mktemp("instance"))
    for uid, im in images.items():
        ii.add(uid, extract_local_features(im))
    ii.commit()
    return ii


def crop_of(im: Image.Image) -> Image.Image:
    x, y, w, h = CROP
    return im.crop((x, y, x + w, y + h))


TRANSFORMS = {
    "none": lambda c: c,
    "scale 0.6": lambda c: c.resize((round(c.width * 0.6), round(c.height * 0.6)), Image.Resampling.BICUBIC),
    "scale 1.7": lambda c: c.resize((round(c.width * 1.7), round(c.height * 1.7)), Image.Resampling.BICUBIC),
    "rotate 4": lambda c: c.rotate(4, Image.Resampling.BICUBIC),
    "jpeg 35": lambda c: jpeg(c, 35),
    "brightness 1.3": lambda c: ImageEnhance.Brightness(c).enhance(1.3),
    "mirror": lambda c: c.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_transformed_crop_finds_its_source_with_the_right_box(index, images, name):
    source = "img3#img"
    query = TRANSFORMS[name](crop_of(images[source]))
    res = index.search(query, k=3)
    assert res, f"{name}: no verified match"
    top = res[0]
    assert top.unit_id == source
    assert top.inliers >= 8
    assert iou(top.box, CROP) > 0.5, (name, top.box)
    assert top.mirrored == (name == "mirror")


def test_bbox_query_uses_only_the_crop(index, images):
    # A scene made of two sources side by side; the box selects the part cut from img5.
    a, b = crop_of(images["img1#img"]), crop_of(images["img5#img"])
    scene = Image.new("RGB", (a.width + b.width + 20, max(a.height, b.height)), (128, 128, 128))
    scene.paste(a, (0, 0))
    scene.paste(b, (a.width + 20, 0))
    res = index.search(scene, bbox=[a.width + 20, 0, b.width, b.height])
    assert res and res[0].unit_id == "img5#img"
    assert all(m.unit_id != "img1#img" for m in res)
    assert iou(res[0].box, CROP) > 0.5
    # The transform maps the query image's pixels: the box corner lands near the crop corner of the source.
    t = np.array(res[0].transform)
    corner = t @ np.array([a.width + 20, 0, 1.0])
    assert np.allclose(corner[:2] / corner[2], CROP[:2], atol=6)


def test_unrelated_image_matches_nothing(index):
    assert index.search(draw_image(99)) == []


def test_mirrored_features_equal_features_of_the_mirrored_image(images):
    im = images["img2#img"]
    f = extract_local_features(im, corners=0)
    g = extract_local_features(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), corners=0)
    m = mirror_features(f)
    # Pair keypoints by position; the permuted descriptors must match the ones detected on the mirrored image.
    d = np.linalg.norm(m.xy[:, None, :] - g.xy[None, :, :], axis=2)
    i, j = np.nonzero(d < 1.0)  # OpenCV places keypoints ~0.25 px off pixel centres, so mirrors differ by 0.5
    assert len(i) > 50
    sim = np.einsum("ij,ij->i", rootsift(m.desc[i]), rootsift(g.desc[j]))
    assert np.median(sim) > 0.97


def test_remove_then_persistence_round_trip(images, tmp_path):
    ii = InstanceIndex.open(tmp_path / "idx")
    for uid, im in images.items():
        ii.add(uid, extract_local_features(im))
    ii.commit()
    query = crop_of(images["img4#img"])
    before = ii.search(query)
    assert before[0].unit_id == "img4#img"

    assert ii.remove(["img4#img", "no-such-id"]) == 1
    assert "img4#img" not in ii.unit_ids() and len(ii) == 5
    assert all(m.unit_id != "img4#img" for m in ii.search(query))
    ii.commit()

    again = InstanceIndex.open(tmp_path / "idx")
    assert again.unit_ids() == set(images) - {"img4#img"}
    assert all(m.unit_id != "img4#img" for m in again.search(query))
    res = again.search(crop_of(images["img0#img"]))
    assert res[0].unit_id == "img0#img"
    st = again.stats()
    assert st["images"] == 5 and st["features"] > 0 and st["codebook_size"] > 0 and st["bytes"] > 0

    # Re-adding an id replaces it; the re-added image is found again.
    again.add("img4#img", extract_local_features(images["img4#img"]))
    again.commit()
    third = InstanceIndex.open(tmp_path / "idx")
    assert len(third) == 6
    assert third.search(query)[0].unit_id == "img4#img"


def test_interrupted_commit_leaves_the_previous_state(images, tmp_path, monkeypatch):
    folder = tmp_path / "idx"
    ii = InstanceIndex.open(folder)
    for uid in ["img0#img", "img1#img"]:
        ii.add(uid, extract_local_features(images[uid]))
    ii.commit()
    manifest = (folder / "manifest.json").read_text()

    ii.add("img2#img", extract_local_features(images["img2#img"]))

    def killed(*args, **kwargs):  # the process dies after the segment files, before the manifest
        raise KeyboardInterrupt

    monkeypatch.setattr(instance_store, "write_manifest", killed)
    with pytest.raises(KeyboardInterrupt):
        ii.commit()
    monkeypatch.undo()
    assert (folder / "manifest.json").read_text() == manifest
    reopened = InstanceIndex.open(folder)
    assert reopened.unit_ids() == {"img0#img", "img1#img"}
    assert reopened.search(crop_of(images["img1#img"]))[0].unit_id == "img1#img"
    # The next commit cleans up the orphaned files of the interrupted one.
    reopened.add("img3#img", extract_local_features(images["img3#img"]))
    reopened.commit()
    named = json.loads((folder / "manifest.json").read_text())
    files = set(os.listdir(folder))
    expected = {"manifest.json", named["vocab"]}
    for seg in named["segments"]:
        expected |= {f"{seg['name']}.{k}.npy" for k in ("xy", "sa", "desc", "off", "meta")} | {seg["words"]}
    assert files == expected


def test_vocabulary_is_retrained_when_the_corpus_doubles(tmp_path):
    ii = InstanceIndex.open(tmp_path / "idx")
    ii.add("a", extract_local_features(draw_image(10)))
    ii.commit()
    first = ii.stats()["codebook_size"]
    for i in range(11, 17):
        ii.add(str(i), extract_local_features(draw_image(i)))
    ii.commit()
    assert ii.stats()["codebook_size"] > first
    assert ii.search(crop_of(draw_image(10)))[0].unit_id == "a"


def test_bad_query_images_raise_query_error(index, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(QueryError, match="cannot be read"):
        index.search(str(corrupt))
    with pytest.raises(QueryError, match="at least"):
        index.search(Image.new("RGB", (1, 1)))
    with pytest.raises(QueryError, match="no distinctive detail"):
        index.search(Image.new("RGB", (300, 200), (200, 200, 200)))
    with pytest.raises(QueryError, match="outside"):
        index.search(draw_image(3), bbox=[1000, 1000, 50, 50])
    with pytest.raises(QueryError, match="positive"):
        index.search(draw_image(3), bbox=[0, 0, 0, 10])
    with pytest.raises(QueryError, match="not an image file") as e:  # bytes are decoded like an upload
        index.search(b"bytes")
    assert "object at 0x" not in str(e.value)
    with pytest.raises(QueryError, match="path, bytes or a PIL image"):
        index.search(42)


def test_empty_index_returns_nothing(tmp_path):
    ii = InstanceIndex.open(tmp_path / "empty")
    assert ii.search(draw_image(1)) == []
    assert len(ii) == 0 and ii.stats()["images"] == 0


def test_features_are_in_given_pixel_coordinates():
    big = draw_image(7).resize((W * 4, H * 4), Image.Resampling.BICUBIC)
    f = extract_local_features(big, max_side=400)
    assert isinstance(f, LocalFeatures) and len(f) > 100
    assert f.image_size == big.size and f.work_scale == pytest.approx(W * 4 / 400, rel=0.01)
    assert f.xy[:, 0].max() > W * 2 and f.xy[:, 1].max() > H * 2
    assert f.desc.dtype == np.uint8 and f.desc.shape[1] == 128


def test_small_downscaled_jpeg_crop_still_matches(index, images):
    # A ~70x60 pixel, heavily recompressed copy of the crop: upscaled before detection, matched at once or by
    # the second-chance descriptor matching.
    small = jpeg(crop_of(images["img2#img"]).resize((72, 58), Image.Resampling.BICUBIC), 35)
    res = index.search(small, k=3)
    assert res and res[0].unit_id == "img2#img"
    assert iou(res[0].box, CROP) > 0.4, res[0].box


def test_second_chance_descriptor_matching_when_words_verify_nothing(images, tmp_path):
    from polyseek.store.instance import InstanceConfig

    # min_sim above 1 makes every word correspondence fail, so only the ratio-test rescue can verify.
    ii = InstanceIndex.open(tmp_path / "idx", InstanceConfig(min_sim=1.01))
    for uid, im in images.items():
        ii.add(uid, extract_local_features(im))
    res = ii.search(crop_of(images["img1#img"]))
    assert res and res[0].unit_id == "img1#img" and iou(res[0].box, CROP) > 0.5
    off = InstanceIndex.open(tmp_path / "idx2", InstanceConfig(min_sim=1.01, rescue_shortlist=0))
    for uid, im in images.items():
        off.add(uid, extract_local_features(im))
    assert off.search(crop_of(images["img1#img"])) == []


def _small_crop(im: Image.Image) -> Image.Image:
    """A ~2 % region of the image, recompressed: the kind of crop the first pass misses."""
    return jpeg(im.crop((150, 100, 150 + 56, 100 + 48)), 30)


def test_deep_second_pass_verifies_what_the_first_pass_cannot(images, tmp_path):
    import dataclasses

    from polyseek.store.instance import InstanceConfig

    # min_inliers out of reach: the first pass can verify nothing, so only the deep pass (weak threshold, frames
    # agreeing) can answer; the ratio-test rescue is off.
    cfg = InstanceConfig(min_inliers=10_000, rescue_shortlist=0)
    ii = InstanceIndex.open(tmp_path / "idx", cfg)
    for uid, im in images.items():
        ii.add(uid, extract_local_features(im))
    ii.commit()
    query = _small_crop(images["img2#img"])
    res = ii.search(query)
    assert res and res[0].unit_id == "img2#img"
    assert cfg.weak_min_inliers <= res[0].inliers
    assert iou(res[0].box, [150, 100, 56, 48]) > 0.3, res[0].box
    for off in ({"deep_shortlist": 0}, {"deep_budget": 1}, {"weak_min_inliers": 10_000}):
        ii.config = dataclasses.replace(cfg, **off)
        assert ii.search(query) == [], off


def test_ratio_rescue_keeps_only_matches_whose_frames_agree(images):
    from polyseek.store.instance_verify import Candidate, verify_ratio

    src = extract_local_features(images["img4#img"])
    q = extract_local_features(crop_of(images["img4#img"]).rotate(8, Image.Resampling.BICUBIC))
    cand = Candidate(0, np.zeros(len(src), np.int32), src.desc, src.xy, src.work_scale,
                     np.stack([src.size.astype(np.float32), src.angle.astype(np.float32)], axis=1))
    q_sa = np.stack([q.size.astype(np.float32), q.angle.astype(np.float32)], axis=1)
    root = rootsift(q.desc)
    agreeing = verify_ratio(root, q.xy, [cand], min_inliers=20, q_sa=q_sa)
    assert agreeing and agreeing[0].inliers >= 20
    # The same correspondences with each query keypoint's orientation and size scrambled: no (rotation, scale)
    # bin gathers enough of them.
    rng = np.random.default_rng(0)
    scrambled = np.stack([2.0 ** rng.uniform(-8, 8, len(q_sa)), rng.uniform(0, 360, len(q_sa))], axis=1)
    assert verify_ratio(root, q.xy, [cand], min_inliers=20, q_sa=scrambled) == []
    assert verify_ratio(root, q.xy, [cand], min_inliers=20)  # without frames, RANSAC alone still verifies them
    # A strong match (strong_inliers by RANSAC alone) is kept whatever the frames say.
    assert verify_ratio(root, q.xy, [cand], min_inliers=20, q_sa=scrambled, strong_inliers=20)


def test_washed_out_query_is_detected_again_at_a_lower_contrast_threshold(index, images):
    import dataclasses

    # Contrast x0.1 leaves a handful of keypoints at the indexing threshold; the retry at a lower one finds the
    # structure again. Word passes only (no deep pass, no ratio rescue), so the retry is what makes the match.
    query = ImageEnhance.Contrast(crop_of(images["img3#img"])).enhance(0.1)
    cfg = dataclasses.replace(index.config, deep_shortlist=0, rescue_shortlist=0)
    assert len(extract_local_features(query, contrast=cfg.contrast, min_side=cfg.query_min_side, corners=0)) < 20
    saved = index.config
    try:
        index.config = cfg
        res = index.search(query)
        assert res and res[0].unit_id == "img3#img" and iou(res[0].box, CROP) > 0.5
        index.config = dataclasses.replace(cfg, retry_contrast=cfg.contrast)  # no retry
        assert index.search(query) == []
    finally:
        index.config = saved


def test_second_chances_do_not_match_unrelated_images(index):
    # Large unrelated queries find 5-7 frame-consistent inliers by chance in several images at once; the deep
    # pass and the rescue return a weak match only as a clear winner, so none of these matches anything.
    for seed in range(92, 100):
        assert index.search(draw_image(seed)) == [], seed


def test_small_query_keeps_the_features_of_its_own_scale(index, images):
    import dataclasses

    from polyseek.encode.local import concat_features

    small = crop_of(images["img5#img"]).resize((64, 52), Image.Resampling.BICUBIC)
    cfg = index.config
    up = extract_local_features(small, max_features=cfg.query_max_features, min_side=cfg.query_min_side,
                                contrast=cfg.contrast, grid=cfg.grid, corners=0)
    own = extract_local_features(small, max_features=cfg.query_max_features, contrast=cfg.contrast, grid=cfg.grid,
                                 corners=0)
    assert up.work_scale < 1 and len(own) > 0
    both = index._query_features(small, cfg.contrast)
    assert len(both) == len(up) + len(own)
    assert np.allclose(both.xy[len(up):], own.xy) and np.array_equal(both.desc[: len(up)], up.desc)
    saved = index.config
    try:
        index.config = dataclasses.replace(cfg, query_both_scales=False)
        assert len(index._query_features(small, cfg.contrast)) == len(up)
    finally:
        index.config = saved
    # A query as large as query_min_side is detected once, at its own scale.
    big = crop_of(images["img5#img"])
    assert len(index._query_features(big, cfg.contrast)) == len(
        extract_local_features(big, max_features=cfg.query_max_features, min_side=cfg.query_min_side,
                               contrast=cfg.contrast, grid=cfg.grid, corners=0))
    res = index.search(small, k=3)
    assert res and res[0].unit_id == "img5#img" and iou(res[0].box, CROP) > 0.4, res
    with pytest.raises(ValueError, match="different images"):
        concat_features(up, extract_local_features(big, corners=0))


def test_ratio_test_rejects_a_feature_whose_two_nearest_are_equally_close(images):
    from polyseek.store.instance_verify import Candidate, verify_ratio

    src = extract_local_features(images["img0#img"])
    # Recompressed and turned, so that no descriptor equals its match (identical ones differ only by rounding).
    q = extract_local_features(jpeg(crop_of(images["img0#img"]).rotate(6, Image.Resampling.BICUBIC), 40))
    cand = Candidate(0, np.zeros(len(src), np.int32), src.desc, src.xy, src.work_scale)
    found = verify_ratio(rootsift(q.desc), q.xy, [cand], min_inliers=10)
    assert found and found[0].inliers >= 10
    # Every indexed descriptor twice (the copy far away): each query feature's best and second best are equal,
    # so no match passes the ratio test.
    twice = Candidate(0, np.zeros(2 * len(src), np.int32), np.concatenate([src.desc, src.desc]),
                      np.concatenate([src.xy, src.xy + 1000]), src.work_scale)
    assert verify_ratio(rootsift(q.desc), q.xy, [twice], min_inliers=3) == []


def test_index_features_carry_corners_that_repeat_no_sift_keypoint(images):
    from polyseek.encode.local import INDEX_CORNERS

    im = images["img3#img"]
    f = extract_local_features(im)
    sift = extract_local_features(im, corners=0)
    assert f.n_corners > 100 and f.n_corners <= INDEX_CORNERS and sift.n_corners == 0
    # The SIFT part is exactly what a SIFT-only extraction gives; the corners follow it.
    assert f.n_sift == len(sift)
    assert np.array_equal(f.xy[: f.n_sift], sift.xy) and np.array_equal(f.desc[: f.n_sift], sift.desc)
    corners = f.xy[f.n_sift :]
    d = np.linalg.norm(corners[:, None, :] - sift.xy[None, :, :], axis=2)
    ratio = sift.size.astype(np.float32)[None, :] / f.size[f.n_sift :].astype(np.float32)[:, None]
    assert not ((d <= 1.5 * f.work_scale) & (ratio > 1 / 1.5) & (ratio < 1.5)).any()
    # Mirroring keeps the split.
    assert mirror_features(f).n_corners == f.n_corners


def _smooth_scene(seed: int) -> Image.Image:
    """A photo-like scene: smooth shading with a few thin-lined objects, where SIFT finds few keypoints."""
    rng = random.Random(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    base = 120 + 60 * np.sin(xx / (40 + seed % 7) + seed) * np.cos(yy / 55.0)
    im = Image.fromarray(np.dstack([base, base * 0.9, base * 0.8]).clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(150):
        x, y = rng.randrange(W - 30), rng.randrange(H - 30)
        pts = [(x + rng.randint(0, 28), y + rng.randint(0, 28)) for _ in range(4)]
        d.line(pts, fill=tuple(rng.randrange(256) for _ in range(3)), width=1)
    return im


def test_corner_features_find_a_small_crop_the_sift_stages_cannot(tmp_path):
    import dataclasses

    from polyseek.store.instance import InstanceConfig

    scenes = {f"s{i}": _smooth_scene(i) for i in range(6)}
    # Word correspondences (min_sim > 1) and the SIFT-only rescue (budget 0) can verify nothing: only the corner
    # chance, which matches SIFT and corner features by descriptor, can answer.
    cfg = InstanceConfig(min_sim=1.01, rescue_budget=0, deep_shortlist=0)
    ii = InstanceIndex.open(tmp_path / "idx", cfg)
    for uid, im in scenes.items():
        ii.add(uid, extract_local_features(im))
    ii.commit()
    box = (130, 80, 80, 64)  # ~5 % of the scene
    query = jpeg(scenes["s2"].crop((box[0], box[1], box[0] + box[2], box[1] + box[3])).rotate(
        7, Image.Resampling.BICUBIC), 40)
    res = ii.search(query)
    assert res and res[0].unit_id == "s2", res
    assert iou(res[0].box, box) > 0.4, res[0].box
    ii.config = dataclasses.replace(cfg, corner_budget=0)
    assert ii.search(query) == []
    # An index whose images carry no corners (as one of format 1) answers nothing from that chance either.
    plain = InstanceIndex.open(tmp_path / "plain", cfg)
    for uid, im in scenes.items():
        plain.add(uid, extract_local_features(im, corners=0))
    assert plain.search(query) == []
    # Unrelated scenes match nothing through it.
    for seed in range(40, 46):
        assert ii.search(_smooth_scene(seed).crop((130, 80, 210, 144))) == [], seed


def test_format_1_index_without_corners_still_opens_and_searches(images, tmp_path):
    folder = tmp_path / "v1"
    ii = InstanceIndex.open(folder)
    for uid, im in images.items():
        ii.add(uid, extract_local_features(im, corners=0))
    ii.commit()
    # Rewrite it as format 1 wrote it: 3 meta columns, format 1 in the manifest.
    manifest = json.loads((folder / "manifest.json").read_text())
    for seg in manifest["segments"]:
        meta_path = folder / f"{seg['name']}.meta.npy"
        np.save(meta_path, np.load(meta_path)[:, :3])
    manifest["format"] = 1
    for key in ("corner_budget",):
        manifest["config"].pop(key)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    old = InstanceIndex.open(folder)
    res = old.search(crop_of(images["img1#img"]))
    assert res and res[0].unit_id == "img1#img"
    # New images added to it carry corners; the next commit writes the current format.
    old.add("img6#img", extract_local_features(draw_image(6)))
    old.commit()
    again = InstanceIndex.open(folder)
    assert json.loads((folder / "manifest.json").read_text())["format"] == instance_store.FORMAT_VERSION
    assert again.search(crop_of(draw_image(6)))[0].unit_id == "img6#img"
