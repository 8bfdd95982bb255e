"""Storage faults raised inside extraction survive the code that catches them.

The extractor reads past the first chunk through a fetch callable (TIFF directories, XMP and
ICC past the head, GIF frames). Pillow and the field readers catch broad exceptions on purpose
(a broken EXIF block costs its fields, not the image), so a timeout, a 503 or a reset connection
raised by that callable would become a "corrupt image" rejection or a silently missing field.
A read that failed says nothing about the image: this wrapper remembers the first fault and
raises it again when the extraction ends, whatever the extraction made of it.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from shared.errors import PipelineError, StorageUnavailableError

Fetch = Callable[[int, int], bytes]


class GuardedFetch:
    """A fetch callable that remembers the first fault it raised; a context manager that
    re-raises it on exit (replacing whatever the extraction raised or returned instead)."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self.fault: Exception | None = None

    def __call__(self, offset: int, length: int) -> bytes:
        try:
            return self._fetch(offset, length)
        except MemoryError:
            raise
        except Exception as exc:
            # The pipeline's own errors keep their class (transient, configuration, blob gone);
            # anything else from the read path is a storage fault, so worth another try.
            fault = exc if isinstance(exc, PipelineError) else StorageUnavailableError(
                f"reading bytes {offset}-{offset + length - 1} of the blob failed: "
                f"{type(exc).__name__}: {exc}")
            if self.fault is None:
                self.fault = fault
            if fault is exc:
                raise
            raise fault from exc

    def __enter__(self) -> GuardedFetch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.fault is not None and exc is not self.fault:
            raise self.fault
