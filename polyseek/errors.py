"""One exception tree for Polyseek. Messages say what to do next."""

from __future__ import annotations


class PolyseekError(Exception):
    """Root of every error Polyseek raises on purpose."""


class ConfigError(PolyseekError, ValueError):
    """A configuration value is wrong or unknown."""


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup failed; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class NotFoundError(PolyseekError, KeyError):
    """An asset, unit or index does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class IndexMismatchError(PolyseekError):
    """The index was built with other encoders or another schema than requested."""


class IngestError(PolyseekError):
    """One file could not be ingested; `reason` is shown to the user and stored."""

    def __init__(self, reason: str, *, path: str | None = None):
        super().__init__(reason if path is None else f"{path}: {reason}")
        self.reason = reason
        self.path = path


class UnsupportedFileError(IngestError):
    """The file type is not one Polyseek can index."""


class QueryError(PolyseekError, ValueError):
    """A query cannot be run as given (bad image, missing encoder, bad filter)."""


class ImageTooLargeError(QueryError):
    """A query image has more pixels than allowed (checked before its pixels are decoded)."""


class MissingDependencyError(PolyseekError, ImportError):
    """An optional package is needed; the message names the extra to install."""


class StorageError(PolyseekError):
    """The index folder cannot be written: what was committed before stays searchable.

    Not an OSError on purpose: per-file handlers catch OSError (a bad file), and a full disk is never a bad file."""

    def __init__(self, message: str, *, path: str | None = None, errno: int | None = None):
        super().__init__(message)
        self.path, self.errno = path, errno


class DiskFullError(StorageError):
    """No space left (ENOSPC) or the disk quota is used up (EDQUOT). The HTTP API answers 507."""


class ReadOnlyError(StorageError):
    """The index folder is on a read-only file system (EROFS) or not writable (EACCES, EPERM). HTTP 503."""


class MissingExtraError(IngestError):
    """A file needs an optional extra that is not installed: it is skipped (not failed) and the reason names the
    extra, e.g. "skipped: install polyseek[media] to index audio and video"."""
class LLMError(PolyseekError):
    """A language-model endpoint failed (unreachable, timed out, refused, or replied with something unusable)."""


class BudgetExceededError(PolyseekError):
    """An agent run used up its step, time or token budget."""
