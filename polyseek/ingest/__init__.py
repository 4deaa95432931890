"""Ingest stage: files, folders and records files → assets and units."""

from .base import ExtractContext, Extractor, extractors
from .detect import supported_suffixes, detect
from .files import discover, extract_file, file_hash
from .images import ImageExtractor
from .ocr import OcrLine, get_engine, ocr_engines, ocr_lines
from .pdf import PdfExtractor
from .records import iter_records
from .text import TextExtractor, chunk_spans, decode_text

__all__ = [
    "ExtractContext", "Extractor", "extractors", "supported_suffixes", "detect", "discover", "extract_file",
    "file_hash", "ImageExtractor", "OcrLine", "get_engine", "ocr_engines", "ocr_lines", "PdfExtractor",
    "iter_records", "TextExtractor", "chunk_spans", "decode_text",
]
