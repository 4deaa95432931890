"""Hostile and faulty conditions against the real server: DNS rebinding (a foreign Host), cross-origin writes
(CSRF), a streamed oversize body, another process committing while the server runs, a full or read-only index."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from .conftest import LiveServer
from .test_security import raw_get


def raw(url: str, method: str, path: str, headers: dict, body: bytes = b""):
    import http.client

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "attacker:{port}"])
def test_foreign_host_is_refused(server, host):
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 must get nothing."""
    status, body = raw_get(server.url, "/status", {"Host": host.format(port=server.port)})
    assert status == 403 and b"host name" in body
    status, body = raw_get(server.url, "/assets", {"Host": host.format(port=server.port)})
    assert status == 403 and b'"assets"' not in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "[::1]:{port}"])
def test_loopback_host_names_are_served(server, host):
    status, _ = raw_get(server.url, "/status", {"Host": host.format(port=server.port)})
    assert status == 200


def test_cross_origin_writes_are_refused(server, corpus):
    """CSRF: a form or fetch from another site must not index, remove or search."""
    body = b'{"paths": ["%s"]}' % str(corpus["allowed"] / "kiwi.md").encode()
    own = f"http://127.0.0.1:{server.port}"
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Origin": f"http://127.0.0.1:{server.port + 1}"},
                    {"Referer": "http://evil.example/page.html"}):
        for path in ("/index", "/index/remove", "/search"):
            status, data = raw(server.url, "POST", path, {"Content-Type": "application/json", **headers}, body)
            assert status == 403 and b"cross-origin" in data, (path, headers, status, data[:200])
    # The server's own page (same origin) and clients that send no Origin (curl, scripts) still work.
    status, data = raw(server.url, "POST", "/search", {"Content-Type": "application/json", "Origin": own},
                       b'{"text": "green tea"}')
    assert status == 200, data[:300]
    status, data = raw(server.url, "POST", "/search", {"Content-Type": "application/json",
                                                      "Referer": own + "/ui/index.html"}, b'{"text": "tea"}')
    assert status == 200, data[:300]
    status, data = raw(server.url, "POST", "/search", {"Content-Type": "application/json"}, b'{"text": "tea"}')
    assert status == 200


def test_configured_origin_and_host_are_allowed(index_path):
    from polyseek.serve.api import ServeConfig

    cfg = ServeConfig(index=index_path, cors_origins=("http://app.example",), allowed_hosts=("search.internal",))
    with LiveServer(cfg) as s:
        status, _ = raw(s.url, "POST", "/search", {"Content-Type": "application/json", "Origin": "http://app.example"},
                        b'{"text": "tea"}')
        assert status == 200
        assert raw_get(s.url, "/status", {"Host": f"search.internal:{s.port}"})[0] == 200
        assert raw_get(s.url, "/status", {"Host": "other.internal"})[0] == 403


def test_streamed_oversize_upload_gets_413(client):
    """A body without Content-Length (chunked) that grows past the limit: 413, not the form parser's 400."""
    def body(field):
        yield b"--xyz\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"big.png\"\r\n\r\n" % field
        for _ in range(8):
            yield b"a" * 500_000
        yield b"\r\n--xyz--\r\n"
    def json_body():
        yield b'{"items": ["'
        for _ in range(8):
            yield b"a" * 500_000
        yield b'"]}'
    for path, field in (("/search", b"image"), ("/index", b"files")):
        r = client.post(path, content=body(field), headers={"Content-Type": "multipart/form-data; boundary=xyz"})
        assert r.status_code == 413, (path, r.text)
        assert r.json()["error"]["type"] == "TooLargeError"
    # A JSON body FastAPI parses itself: its parser turns the failed read into "error parsing the body" (400).
    r = client.post("/index/remove", content=json_body(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["type"] == "TooLargeError"


def test_unreadable_query_image_message_names_no_python_object(client):
    r = client.post("/search", files={"image": ("x.png", b"this is not an image", "image/png")})
    assert r.status_code == 400
    msg = r.json()["error"]["message"]
    assert "BytesIO" not in msg and "object at 0x" not in msg and "image" in msg


def test_server_sees_another_process_commit_on_asset_endpoints(tmp_path):
    """An index run in another process while the server runs: /assets and the file show up without a search."""
    import polyseek
    from polyseek.config import IndexConfig, IngestConfig
    from polyseek.serve.api import ServeConfig

    root = tmp_path / "docs"
    root.mkdir()
    (root / "first.txt").write_text("the first note about walruses\n")
    idx = polyseek.open(tmp_path / "idx", IndexConfig(ingest=IngestConfig(ocr=False), instance=False))
    idx.add([root])
    idx.close()
    with LiveServer(ServeConfig(index=tmp_path / "idx")) as s, s.client() as c:
        assert [a["id"] for a in c.get("/assets").json()["assets"]] == ["first"]
        assert c.get("/assets/second").status_code == 404
        (root / "second.txt").write_text("the second note about narwhals\n")
        code = textwrap.dedent(f"""
            import polyseek
            polyseek.open({str(tmp_path / 'idx')!r}).add([{str(root / 'second.txt')!r}])
        """)
        subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
        import time

        time.sleep(1.1)  # the server looks for other processes' commits at most once a second
        ids = sorted(a["id"] for a in c.get("/assets").json()["assets"])
        assert ids == ["first", "second"]
        r = c.get("/assets/second/file")
        assert r.status_code == 200 and "narwhals" in r.text


@pytest.mark.parametrize("fault,status,kind", [("store.units:ENOSPC", 507, "DiskFullError"),
                                              ("store.units:EDQUOT", 507, "DiskFullError"),
                                              ("lock.open:EROFS", 503, "ReadOnlyError"),
                                              ("lock.open:EACCES", 503, "ReadOnlyError")])
def test_full_or_read_only_index_answers_507_or_503(server, corpus, monkeypatch, fault, status, kind):
    """An OS write failure injected in the index run (store/fsio.py fault points): a clear JSON answer, no 500,
    and the index still searchable afterwards."""
    target = corpus["allowed"] / "fault.md"
    target.write_text(f"# Fault\n\nA note written to test {fault}.\n")
    with server.client() as c:
        monkeypatch.setenv("POLYSEEK_FAULT", fault)
        r = c.post("/index", json={"paths": [str(target)]})
        monkeypatch.delenv("POLYSEEK_FAULT")
        assert r.status_code == status, r.text
        err = r.json()["error"]
        assert err["type"] == kind and "Traceback" not in err["message"]
        assert ("full" in err["message"]) if status == 507 else ("cannot write" in err["message"])
        assert c.get("/assets/fault").status_code == 404
        assert c.post("/search", json={"text": "green tea"}).json()["hits"]
        r = c.post("/index", json={"paths": [str(target)]})  # space is back: the same request now works
        assert r.status_code == 200 and "fault" in r.json()["assets"], r.text
        assert c.post("/index/remove", json={"items": ["fault"]}).status_code == 200
