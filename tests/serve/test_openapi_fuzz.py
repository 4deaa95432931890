"""Schemathesis against /openapi.json on a real server: no generated request may get a 5xx."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

EXAMPLES = 25


@pytest.fixture(scope="module")
def fuzz_server(index_path, corpus, tmp_path_factory):
    """A server over a copy of the index: generated requests may upload files or remove assets."""
    import shutil

    from polyseek.serve.api import ServeConfig

    from .conftest import LiveServer

    copy = tmp_path_factory.mktemp("fuzz") / "index"
    shutil.copytree(index_path, copy, ignore=shutil.ignore_patterns("uploads", ".lock"))
    with LiveServer(ServeConfig(index=copy, allow_roots=(corpus["allowed"],), max_upload_bytes=1_000_000)) as s:
        yield s


@pytest.mark.slow
def test_no_server_errors(fuzz_server):
    """Every operation in the document, a bounded number of generated requests each (derandomized)."""
    from hypothesis import given

    schema = schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {"/search", "/index", "/assets/{asset_id}/file"} <= {op.path for op in ops}
    doc = schema.raw_schema
    seen = []
    for op in ops:
        documented = set(doc["paths"][op.path][op.method.lower()]["responses"])
        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def run(case):
            r = case.call(base_url=fuzz_server.url, timeout=60)
            seen.append(r.status_code)
            assert str(r.status_code) in documented, (case.method, op.path, r.status_code, "not in the document")
            assert r.status_code < 500, (case.method, case.formatted_path, r.status_code, r.text[:500])
            if r.status_code >= 400:
                body = r.json()
                assert body["error"]["message"] and body["error"]["type"], body

        run()
    assert len(seen) >= len(ops)
