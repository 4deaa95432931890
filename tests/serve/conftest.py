"""A small real index and real uvicorn servers on free loopback ports, shared by the serve tests."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from tests.fixtures import make_good_corpus  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "serve"
SECRET = "TOP-SECRET-OUTSIDE-THE-INDEX"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server for `create_app(config)`, in a thread, on a free loopback port."""

    def __init__(self, config):
        import uvicorn

        from polyseek.serve.api import create_app

        self.app = create_app(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 180
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(15)

    def client(self, **kw) -> "httpx.Client":
        return httpx.Client(base_url=self.url, timeout=60, **kw)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """make_good_corpus plus an HTML file and a symlink that points outside the corpus (to a secret)."""
    base = tmp_path_factory.mktemp("serve")
    root = base / "corpus"
    make_good_corpus(root)
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"{SECRET} escape attempt\n")
    os.symlink(outside / "secret.txt", root / "leak.txt")
    os.symlink(outside, root / "linkdir")  # a symlinked folder leading out of the root: not followed
    (root / "moved").mkdir()
    (root / "moved" / "moved.txt").write_text("a harmless note about harbours\n")
    (base / "elsewhere").mkdir()
    (base / "elsewhere" / "moved.txt").write_text(f"{SECRET} via a folder swapped for a symlink\n")
    (root / "swap.txt").write_text("swappable harmless note about lighthouses\n")
    allowed = base / "allowed"
    allowed.mkdir()
    (allowed / "kiwi.md").write_text("# Kiwi\n\nThe kiwi fruit is rich in vitamin C and grows on vines.\n")
    return {"base": base, "root": root, "outside": outside, "allowed": allowed}


@pytest.fixture(scope="session")
def index_path(corpus):
    import polyseek
    from polyseek.config import IndexConfig, IngestConfig

    path = corpus["base"] / "index"
    idx = polyseek.open(path, IndexConfig(ingest=IngestConfig(ocr=False)))
    report = idx.add([corpus["root"]])
    assert report.indexed >= 8, report.to_dict()
    idx.close()
    # After indexing, swap a real file for a symlink to the secret: it must not be served either.
    (corpus["root"] / "swap.txt").unlink()
    os.symlink(corpus["outside"] / "secret.txt", corpus["root"] / "swap.txt")
    # ... and a folder for a symlink to a folder outside: the served roots are the indexed ones, not where files
    # resolve to now.
    (corpus["root"] / "moved" / "moved.txt").unlink()
    (corpus["root"] / "moved").rmdir()
    os.symlink(corpus["base"] / "elsewhere", corpus["root"] / "moved")
    return path


@pytest.fixture(scope="session")
def server(index_path, corpus):
    from polyseek.serve.api import ServeConfig

    cfg = ServeConfig(index=index_path, allow_roots=(corpus["allowed"],), max_upload_bytes=2_000_000,
                      max_image_pixels=1_000_000)
    with LiveServer(cfg) as s:
        yield s


@pytest.fixture(scope="session")
def token_server(index_path):
    from polyseek.serve.api import ServeConfig

    cfg = ServeConfig(index=index_path, token="s3cret-token", cors_origins=("http://allowed.example",))
    with LiveServer(cfg) as s:
        yield s


@pytest.fixture()
def client(server):
    with server.client() as c:
        yield c
