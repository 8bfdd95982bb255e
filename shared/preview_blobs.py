"""Previews in their container: named by the source version, uploaded, and deleted with it.

A preview of blob ``a/b.jpg`` version ``0x8DC..`` at long edge 256 is ``a/b.jpg/0x8DC../256.webp``:
a new version never shows an old preview (its names differ), a version's previews are found by
listing ``a/b.jpg/`` and keeping the names whose rest is exactly ``<etag>/<size>.<ext>`` (the
previews of a blob named ``a/b.jpg/c.png`` have two more slashes there, so they never match).
A source name too long for that suffix (blob names stop at 1,024 characters) is keyed by its
SHA-256 under ``~long/``. Names embed the version, so previews are cached as immutable.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContentSettings

from shared.blob_access import ensure_container, service_client, storage_call
from shared.models import normalise_etag
from shared.settings import StorageTarget

MAX_BLOB_NAME = 1024
_SUFFIX_ROOM = 80  # "/" + an ETag (about 20 characters) + "/" + size + extension, with room
_VERSION_PREVIEW = re.compile(r"(?P<etag>[^/]+)/(?P<size>\d+)\.(?:webp|jpg)")
CACHE_CONTROL = "public, max-age=31536000, immutable"


def preview_key(blob_name: str) -> str:
    """The folder holding every version's previews of one source blob."""
    if len(blob_name) + _SUFFIX_ROOM <= MAX_BLOB_NAME and not blob_name.endswith(("/", ".")):
        return blob_name
    return "~long/" + hashlib.sha256(blob_name.encode()).hexdigest()


def preview_name(blob_name: str, etag: str, size: int, extension: str) -> str:
    return f"{preview_key(blob_name)}/{normalise_etag(etag)}/{size}.{extension}"


@functools.lru_cache(maxsize=16)
def _container_ready(target: StorageTarget, container: str) -> bool:
    """Create the preview container once per process (not once per preview)."""
    ensure_container(target, container)
    return True


def upload_preview(target: StorageTarget, container: str, name: str, data: bytes, content_type: str) -> None:
    """Write (overwriting: a re-run of the same version writes the same bytes) one preview."""
    _container_ready(target, container)
    blob = service_client(target).get_blob_client(container, name)
    settings = ContentSettings(content_type=content_type, cache_control=CACHE_CONTROL)
    storage_call(target, f"upload preview {name!r}",
                 lambda: blob.upload_blob(data, overwrite=True, content_settings=settings))


def version_previews(target: StorageTarget, container: str, blob_name: str) -> dict[str, list[str]]:
    """ETag -> preview names of every version of ``blob_name`` found in the container."""
    client = service_client(target).get_container_client(container)
    prefix = preview_key(blob_name) + "/"

    def call() -> list[str]:
        try:
            return [b.name for b in client.list_blobs(name_starts_with=prefix)]
        except ResourceNotFoundError:
            return []

    found: dict[str, list[str]] = {}
    for name in storage_call(target, f"list previews of {blob_name!r}", call):
        match = _VERSION_PREVIEW.fullmatch(name[len(prefix):])
        if match:
            found.setdefault(match.group("etag"), []).append(name)
    return found


def delete_previews(target: StorageTarget, container: str, blob_name: str, *,
                    etags: set[str] | None = None, keep: str | None = None) -> list[str]:
    """Delete the previews of ``blob_name``: of the versions in ``etags`` when given, else of
    every version but ``keep``; the names deleted. Deletion paths (BlobDeleted, reconciliation,
    superseded runs) call this; a preview already gone is not an error."""
    if not container:
        return []
    wanted = {normalise_etag(e) for e in etags} if etags is not None else None
    kept = normalise_etag(keep) if keep else None
    client = service_client(target).get_container_client(container)
    deleted: list[str] = []
    for etag, names in version_previews(target, container, blob_name).items():
        if (wanted is not None and etag not in wanted) or etag == kept:
            continue
        for name in names:
            storage_call(target, f"delete preview {name!r}", lambda n=name: _delete(client, n))
            deleted.append(name)
    return deleted


def _delete(client: Any, name: str) -> None:
    try:
        client.delete_blob(name)
    except ResourceNotFoundError:
        pass


def all_preview_names(target: StorageTarget, container: str) -> list[str]:
    """Every blob in the preview container (tests and the chaos check compare it with the rows)."""
    client = service_client(target).get_container_client(container)

    def call() -> list[str]:
        try:
            return [b.name for b in client.list_blobs()]
        except ResourceNotFoundError:
            return []

    return storage_call(target, f"list container {container!r}", call)
