"""Safety: no path traversal or symlink escape, a token on non-loopback binds, 401s, CORS off by default."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys

import pytest

from polyseek.errors import ConfigError
from polyseek.serve.api import ServeConfig
from polyseek.serve.api.config import is_loopback

from .conftest import SECRET

TRAVERSALS = [
    "/assets/../../../../etc/passwd",
    "/assets/../../../../etc/passwd/file",
    "/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd/file",
    "/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd/file",
    "/assets/%252e%252e%252fetc%252fpasswd/file",
    "/assets/..\\..\\etc\\passwd/file",
    "/assets/%2Fetc%2Fpasswd/file",
    "/assets//etc/passwd/file",
    "/ui/../../../../etc/passwd",
    "/ui/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/ui/..%2F..%2F..%2Fapi%2Fapp.py",
]


def raw_get(url: str, path: str, headers: dict | None = None):
    """GET with the path sent byte for byte (no client-side normalisation of '..')."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_attempts_get_404_or_403(server, path):
    status, body = raw_get(server.url, path)
    assert status in (400, 403, 404), (path, status, body[:200])
    assert b"root:" not in body and b"Traceback" not in body and b"create_app" not in body


def test_symlink_to_outside_is_not_served(server):
    with server.client() as c:
        # A file and a folder swapped for symlinks to outside after indexing: the served roots are the indexed
        # root, not the folders the indexed files resolve to now.
        for aid in ("swap", "moved"):
            r = c.get(f"/assets/{aid}/file")
            assert r.status_code == 403, (aid, r.text)
            assert SECRET not in r.text and r.json()["error"]["type"] == "ForbiddenError"
        # Symlinks leading out of the root when it was indexed were not followed, so nothing of theirs is served.
        for aid in ("leak", "linkdir/secret"):
            r = c.get(f"/assets/{aid}/file")
            assert r.status_code == 404 and SECRET not in r.text, (aid, r.text)
        assert SECRET not in c.post("/search", json={"text": "escape attempt"}).text


def test_index_paths_cannot_escape_through_symlinks(server, corpus):
    link = corpus["allowed"] / "escape"
    if not link.exists():
        os.symlink(corpus["outside"], link)
    with server.client() as c:
        r = c.post("/index", json={"paths": [str(link)]})
        assert r.status_code == 403 and SECRET not in r.text


def test_unauthenticated_requests_get_401(token_server):
    with token_server.client() as c:
        for method, path, kw in [("POST", "/search", {"json": {"text": "tea"}}), ("GET", "/status", {}),
                                 ("GET", "/assets/invoice/file", {}), ("GET", "/assets/report", {}),
                                 ("POST", "/index", {"json": {"paths": ["/etc"]}})]:
            r = c.request(method, path, **kw)
            assert r.status_code == 401, (path, r.text)
            assert r.headers["www-authenticate"] == "Bearer" and "token" in r.json()["error"]["message"]
            r = c.request(method, path, headers={"Authorization": "Bearer wrong"}, **kw)
            assert r.status_code == 401
        ok = c.post("/search", json={"text": "green tea"}, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and ok.json()["hits"]
        # The page, its assets and the liveness probe need no token (they hold no data).
        assert c.get("/").status_code == 200 and c.get("/ui/app.js").status_code == 200
        assert c.get("/healthz").status_code == 200


def test_cors_is_off_unless_configured(server, token_server):
    pre = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    with server.client() as c:
        r = c.options("/search", headers=pre)
        assert "access-control-allow-origin" not in r.headers
        r = c.post("/search", json={"text": "tea"}, headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    with token_server.client() as c:
        r = c.options("/search", headers={**pre, "Origin": "http://allowed.example"})
        assert r.headers.get("access-control-allow-origin") == "http://allowed.example"
        r = c.options("/search", headers=pre)
        assert r.headers.get("access-control-allow-origin") != "http://evil.example"


@pytest.mark.parametrize("host,loop", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                       ("127.3.4.5", True), ("0.0.0.0", False), ("::", False),
                                       ("192.168.1.4", False), ("example.com", False)])
def test_loopback_detection(host, loop):
    assert is_loopback(host) is loop


def test_non_loopback_without_token_refuses(index_path, monkeypatch):
    monkeypatch.delenv("POLYSEEK_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="token"):
        ServeConfig.from_env(index=index_path, host="0.0.0.0").check_exposure()
    ServeConfig.from_env(index=index_path, host="0.0.0.0", token="t").check_exposure()
    monkeypatch.setenv("POLYSEEK_TOKEN", "from-env")
    assert ServeConfig.from_env(index=index_path, host="0.0.0.0").token == "from-env"


def test_cli_refuses_to_start_on_all_interfaces_without_token(index_path):
    env = {k: v for k, v in os.environ.items() if k != "POLYSEEK_TOKEN"}
    p = subprocess.run([sys.executable, "-m", "polyseek.serve.cli.main", "serve", "--index", str(index_path),
                        "--host", "0.0.0.0", "--port", "1"], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 1
    assert "refusing to listen on 0.0.0.0 without a token" in p.stderr and "Traceback" not in p.stderr
