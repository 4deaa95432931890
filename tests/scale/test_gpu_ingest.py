"""The GPU image path on the CPU (a tiny random CLIP vision tower, a few JPEGs): the same code that runs on a GPU
with nvJPEG decodes with Pillow here, preprocesses as CLIP's own image processor does, and writes one asset with
its vector per good file; a broken JPEG is reported with its reason."""

from __future__ import annotations

import numpy as np
import pytest

from polyseek.scale.gpu_ingest import VisionTower, decode_jpegs, gpu_decoder_available, ingest_jpegs, preprocess
from polyseek.store.lance import LanceStore
from tests.fixtures import textured_image

TINY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "image_size": 64, "patch_size": 16, "projection_dim": 24}


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    root = tmp_path_factory.mktemp("jpegs")
    paths = []
    for i, size in enumerate([(360, 270), (360, 270), (200, 300), (640, 480), (97, 131)]):
        p = root / f"img{i}.jpg"
        textured_image(i, size=size).save(p, quality=90)
        paths.append(p)
    bad = root / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    return paths, bad


def test_without_a_gpu_decoder_the_reason_is_said():
    ok, why = gpu_decoder_available("cpu")
    assert not ok and "Pillow" in why


def test_preprocessing_matches_clips_image_processor(jpegs):
    import torch
    from PIL import Image
    from transformers import CLIPImageProcessor

    paths, _ = jpegs
    dec = decode_jpegs([p.read_bytes() for p in paths], "cpu")
    assert dec.ok == list(range(len(paths)))
    ours = preprocess(dec.tensors, 64, "cpu", torch.float32).numpy()
    proc = CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})
    ref = proc(images=[Image.open(p).convert("RGB") for p in paths], return_tensors="np")["pixel_values"]
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).mean() < 0.05  # resampling kernels differ slightly (PIL vs torch)


def test_jpegs_to_vectors_in_the_store(jpegs, tmp_path):
    import torch

    paths, bad = jpegs
    torch.manual_seed(0)
    tower = VisionTower.random("cpu", config=TINY)
    store = LanceStore(tmp_path / "lance", {"vec_text": 8, "vec_visual": tower.dim})
    rep = ingest_jpegs(store, paths + [bad], tower, batch=2, readers=2, commit_rows=3)
    assert rep.decoder == "pillow" and rep.indexed == len(paths)
    assert [p for p, _ in rep.failed] == [str(bad)] and "broken JPEG" in rep.failed[0][1]
    assert sorted(store.asset_index()) == sorted(p.stem for p in paths)
    t = store.scan_units(["id", "vec_visual", "vec_text"])
    got = dict(zip(t.column("id").to_pylist(), np.asarray(t.column("vec_visual").to_pylist(), np.float32)))
    dec = decode_jpegs([p.read_bytes() for p in paths], "cpu")
    want = tower.encode(preprocess(dec.tensors, tower.size, "cpu", tower.dtype)).numpy()
    for p, w in zip(paths, want):
        assert np.allclose(got[f"{p.stem}#image"], w, atol=1e-5)
    assert np.allclose(np.linalg.norm(want, axis=1), 1, atol=1e-5)
    assert not np.asarray(t.column("vec_text").to_pylist()).any()
