"""Ingest interface: one Extractor per file family turns a file into an Extraction (asset + units)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..config import IngestConfig
from ..registry import Registry
from ..types import Extraction

extractors: Registry[type["Extractor"]] = Registry("extractor")


@dataclass
class ExtractContext:
    """What an extractor may need besides the file: the config, the asset id chosen by the caller,
    whether visual encoders want pixels (`want_pixels`), and the file's content hash."""

    config: IngestConfig
    asset_id: str
    file_hash: str = ""
    want_pixels: bool = False


class Extractor:
    """Turns one file into an Extraction. Raises IngestError (with a readable reason) on bad input."""

    asset_type: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()  # lower-case, with the dot

    def extract(self, path: Path, ctx: ExtractContext) -> Extraction:  # the one required method
        raise NotImplementedError
