"""ServeConfig: how the HTTP server runs (index, bind address, token, roots, limits). Checked before binding."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from polyseek.errors import ConfigError

TOKEN_ENV = "POLYSEEK_TOKEN"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything, so treat it as exposed


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """Settings of one server. `token=None` means no authentication (allowed on loopback only)."""

    index: Path = Path(".polyseek")
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    allow_roots: tuple[Path, ...] = ()  # folders whose files POST /index may add by path
    cors_origins: tuple[str, ...] = ()
    max_upload_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_k: int = 1000
    render_cache: int = 64  # PDF page renders kept in memory
    extra_roots: tuple[Path, ...] = field(default=())  # more folders whose indexed files may be served
    allowed_hosts: tuple[str, ...] = ()  # Host names besides the bind address and loopback (a reverse proxy's)

    def __post_init__(self):
        object.__setattr__(self, "index", Path(self.index).absolute())
        object.__setattr__(self, "allow_roots", tuple(Path(os.path.realpath(p)) for p in self.allow_roots))
        object.__setattr__(self, "extra_roots", tuple(Path(os.path.realpath(p)) for p in self.extra_roots))
        object.__setattr__(self, "cors_origins", tuple(o.rstrip("/").lower() for o in self.cors_origins))
        object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in self.allowed_hosts))
        if self.token is not None and not self.token.strip():
            object.__setattr__(self, "token", None)
        for p in self.allow_roots:
            if not p.is_dir():
                raise ConfigError(f"--allow-root {p} is not a folder")
        if self.max_upload_bytes < 1 or self.max_image_pixels < 1:
            raise ConfigError("max_upload_bytes and max_image_pixels must be positive")

    @classmethod
    def from_env(cls, **kw) -> "ServeConfig":
        """Like the constructor, but a missing token is taken from $POLYSEEK_TOKEN."""
        if not kw.get("token"):
            kw["token"] = os.environ.get(TOKEN_ENV) or None
        return cls(**kw)

    def check_exposure(self) -> None:
        """Refuse to serve an index to the network without a token."""
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(
                f"refusing to listen on {self.host} without a token: anyone who can reach it could read your files. "
                f"Pass --token SECRET (or set {TOKEN_ENV}), or bind to 127.0.0.1")

    def host_names(self) -> frozenset[str] | None:
        """Host header names this server answers to (without port), or None to accept any: a wildcard bind
        (0.0.0.0, ::) is reached under names it cannot know, and needs a token anyway."""
        bind = self.host.strip("[]").lower()
        if bind in ("0.0.0.0", "::", "") and not self.allowed_hosts:
            return None
        return frozenset({"localhost", "127.0.0.1", "::1", bind, *self.allowed_hosts})

    @property
    def uploads(self) -> Path:
        return self.index / "uploads"
