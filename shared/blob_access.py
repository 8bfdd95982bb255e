"""Blob storage access through azure-storage-blob: ranged reads, uploads, listings.

Errors are translated into the pipeline's classes with a message that says
what to do, because the SDK's own (``ServiceRequestError: Cannot connect to
host 127.0.0.1:10000``) does not tell a newcomer that Azurite is not running.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient, ContentSettings, ExponentialRetry

from shared.errors import ConfigurationError, PipelineError, StorageUnavailableError
from shared.models import BlobRef, normalise_etag
from shared.settings import StorageIdentity, StorageTarget

T = TypeVar("T")


class BlobGone(PipelineError):
    """The blob version to read no longer exists (deleted or overwritten): not a fault of the
    image and nothing to retry; the run ends ``superseded`` and writes no row."""


def _credential(identity: StorageIdentity) -> TokenCredential:
    """The token source the Functions host would use for these settings (imported here: msal makes
    azure.identity cost ~0.2 s to import, which connection-string users need not pay)."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if identity.managed_identity:
        return ManagedIdentityCredential(client_id=identity.client_id or None)
    # Outside Azure the host uses the developer's identity (az login, VS Code, environment).
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


@functools.lru_cache(maxsize=8)
def service_client(target: StorageTarget) -> BlobServiceClient:
    """One client (and connection pool, and token cache) per account, reused across invocations."""
    # Short in-call retries: the orchestrator retries durably, minutes apart.
    options: dict[str, Any] = {
        "retry_policy": ExponentialRetry(initial_backoff=0.5, increment_base=1, retry_total=2,
                                         random_jitter_range=0.2),
        "connection_timeout": 5, "read_timeout": 30,
    }
    if isinstance(target, StorageIdentity):
        return BlobServiceClient(target.blob_service_uri, credential=_credential(target), **options)
    try:
        return BlobServiceClient.from_connection_string(target, **options)
    except ValueError as exc:
        raise ConfigurationError(
            f"AzureWebJobsStorage is not a valid storage connection string ({exc}). Use "
            "'UseDevelopmentStorage=true' for Azurite, the account's connection string, or the "
            "identity-based AzureWebJobsStorage__accountName settings."
        ) from None


def _describe_endpoint(target: StorageTarget) -> str:
    try:
        return service_client(target).url
    except ConfigurationError:
        return "the configured account"


def storage_call(target: StorageTarget, what: str, call: Callable[[], T]) -> T:
    """Run one storage call, translating SDK errors into actionable pipeline errors."""
    try:
        return call()
    except ClientAuthenticationError as exc:
        if isinstance(target, StorageIdentity):
            who = (f"the managed identity {target.client_id}" if target.client_id else
                   "the app's managed identity" if target.managed_identity else "your identity")
            raise ConfigurationError(
                f"blob storage refused {who} while trying to {what}: {exc.message}. Grant it "
                f"'Storage Blob Data Owner' on the account behind {target.blob_service_uri} and check "
                "AzureWebJobsStorage__clientId is the identity's client id."
            ) from None
        raise ConfigurationError(
            f"blob storage refused the credentials while trying to {what}: {exc.message}. "
            "Check the account key or SAS in AzureWebJobsStorage."
        ) from None
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise StorageUnavailableError(
            f"cannot reach blob storage at {_describe_endpoint(target)} while trying to "
            f"{what}: {exc}. Locally, start Azurite ('make azurite', or 'make run' with the local host) "
            "or check AzureWebJobsStorage."
        ) from None
    except (ResourceNotFoundError, ResourceModifiedError, ResourceExistsError):
        raise
    except HttpResponseError as exc:
        # No status: the response broke off while its body was read (azure-core's
        # IncompleteReadError and DecodeError), a network fault like a reset connection.
        if exc.status_code is None or exc.status_code in (408, 429, 500, 502, 503, 504):
            raise StorageUnavailableError(
                f"blob storage is busy or failing ({exc.status_code or type(exc).__name__}) "
                f"while trying to {what}"
            ) from None
        if exc.status_code == 403 and isinstance(target, StorageIdentity):
            raise ConfigurationError(
                f"blob storage denied the identity while trying to {what} ({exc.reason}): grant it "
                "'Storage Blob Data Owner' on the account (role assignments take a few minutes)."
            ) from None
        raise
    except (ConnectionError, TimeoutError) as exc:
        raise StorageUnavailableError(
            f"the connection to blob storage failed while trying to {what}: {type(exc).__name__}: {exc}"
        ) from None


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _total_size(content_range: str | None, fallback: int) -> int:
    """The blob's full size from 'bytes 0-65535/200000' (the range response's own size is the range)."""
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    return fallback


@dataclass
class BlobHead:
    """The first bytes of a blob version plus what the same response told us."""

    data: bytes
    size: int
    etag: str
    content_type: str | None
    last_modified: str | None


class BlobReader:
    """Reads one blob version by ranges, pinned to its ETag so a newer upload is noticed."""

    def __init__(self, connection_string: StorageTarget, ref: BlobRef) -> None:
        self._conn = connection_string
        self.ref = ref
        self._client = service_client(connection_string).get_blob_client(ref.container, ref.name)
        self.requests = 0

    def _conditions(self) -> dict[str, Any]:
        if not self.ref.etag:
            return {}
        return {"etag": f'"{self.ref.etag}"', "match_condition": MatchConditions.IfNotModified}

    def _download(self, offset: int, length: int) -> tuple[bytes, Any]:
        """One ranged GET, its body read inside the same translated call (a reset while the body
        streams is a storage fault like any other)."""
        def call() -> tuple[bytes, Any]:
            downloader = self._client.download_blob(offset=offset, length=length, **self._conditions())
            return downloader.readall(), downloader.properties

        try:
            result = storage_call(self._conn, f"read blob {self.ref.name!r}", call)
        except ResourceNotFoundError:
            raise BlobGone("blob no longer exists: it was deleted before it could be read") from None
        except ResourceModifiedError:
            # 412 on If-Match: the blob now holds another version, or none at all (Azurite
            # answers 412 for a deleted blob too).
            raise BlobGone(
                "blob was overwritten or deleted before this version could be read; a newer "
                "version is indexed by its own run, a deletion by its event or reconciliation"
            ) from None
        self.requests += 1
        return result

    def head(self, length: int) -> BlobHead:
        """One ranged GET for the first bytes; its headers give size, ETag and type."""
        try:
            data, props = self._download(0, length)
        except HttpResponseError as exc:
            if exc.status_code == 416:  # a ranged read of an empty blob
                return self._empty_head()
            raise
        total = _total_size(props.content_range, len(data))
        return BlobHead(
            data=data,
            size=total,
            etag=normalise_etag(props.etag),
            content_type=props.content_settings.content_type if props.content_settings else None,
            last_modified=_iso(props.last_modified),
        )

    def _empty_head(self) -> BlobHead:
        def call() -> Any:
            return self._client.get_blob_properties(**self._conditions())

        try:
            props = storage_call(self._conn, f"read properties of {self.ref.name!r}", call)
        except (ResourceNotFoundError, ResourceModifiedError):
            raise BlobGone("blob was deleted or overwritten before it could be read") from None
        self.requests += 1
        return BlobHead(b"", int(props.size or 0), normalise_etag(props.etag),
                        props.content_settings.content_type if props.content_settings else None,
                        _iso(props.last_modified))

    def fetch(self, offset: int, length: int) -> bytes:
        return self._download(offset, length)[0]


def ensure_container(connection_string: StorageTarget, container: str) -> None:
    client = service_client(connection_string)

    def call() -> None:
        try:
            client.create_container(container)
        except ResourceExistsError:
            pass

    storage_call(connection_string, f"create container {container!r}", call)


def upload_bytes(
    connection_string: StorageTarget, container: str, name: str, data: bytes, content_type: str | None = None
) -> BlobRef:
    """Upload (overwriting) and return the new version's reference."""
    blob = service_client(connection_string).get_blob_client(container, name)
    settings = ContentSettings(content_type=content_type) if content_type else None

    def call() -> dict[str, Any]:
        return blob.upload_blob(data, overwrite=True, content_settings=settings)

    result = storage_call(connection_string, f"upload {name!r}", call)
    return BlobRef(
        container=container,
        name=name,
        etag=normalise_etag(result.get("etag")),
        size=len(data),
        last_modified=_iso(result.get("last_modified")),
        url=blob.url,
        content_type=content_type,
    )


def blob_version(connection_string: StorageTarget, container: str, name: str) -> BlobRef | None:
    """The blob's current version from one Get Blob Properties call, or None when it is gone.

    The starter takes the version from here, never from the trigger: the Functions host hands the
    trigger's ETag over as ``{}`` (docs/host-protocol.md, tests/test_host_shapes.py).
    """
    blob = service_client(connection_string).get_blob_client(container, name)

    def call() -> Any:
        try:
            return blob.get_blob_properties()
        except ResourceNotFoundError:
            return None

    props = storage_call(connection_string, f"read the properties of blob {name!r}", call)
    if props is None:
        return None
    return _ref_from_properties(container, blob.url, props)


def list_blob_refs(connection_string: StorageTarget, container: str) -> Iterator[BlobRef]:
    """Every current blob version in a container (ETags normalised: listings give them bare)."""
    client = service_client(connection_string).get_container_client(container)

    def call() -> list[Any]:
        return list(client.list_blobs())

    for props in storage_call(connection_string, f"list container {container!r}", call):
        yield _ref_from_properties(container, f"{client.url}/{props.name}", props)


def check_storage(connection_string: StorageTarget) -> str | None:
    """None when the account answers; otherwise what is wrong and how to fix it."""
    try:
        client = service_client(connection_string)
        storage_call(connection_string, "list containers",
                     lambda: next(iter(client.list_containers(results_per_page=1)), None))
    except (StorageUnavailableError, ConfigurationError) as exc:
        return str(exc)
    return None


def _ref_from_properties(container: str, url: str, props: Any) -> BlobRef:
    return BlobRef(
        container=container,
        name=props.name,
        etag=normalise_etag(props.etag),
        size=props.size,
        last_modified=_iso(props.last_modified),
        url=url,
        content_type=props.content_settings.content_type if props.content_settings else None,
    )


def list_blob_pages(
    connection_string: str, container: str, page_size: int = 5000, prefix: str | None = None
) -> Iterator[list[BlobRef]]:
    """The container one List Blobs page at a time (continuation token followed), never all at once."""
    client = service_client(connection_string).get_container_client(container)
    pages = client.list_blobs(name_starts_with=prefix, results_per_page=page_size).by_page()
    done = object()

    def fetch() -> Any:
        page = next(pages, done)  # the List Blobs request happens here
        return page if page is done else list(page)

    while (page := storage_call(connection_string, f"list container {container!r}", fetch)) is not done:
        # A page may be empty while a continuation token still follows (Azure may return one).
        yield [_ref_from_properties(container, f"{client.url}/{p.name}", p) for p in page]


def list_blob_page(
    connection_string: StorageTarget, container: str, continuation: str | None, page_size: int = 5000
) -> tuple[list[BlobRef], str | None]:
    """One List Blobs call from ``continuation`` (None: the first page): the page's blobs and the
    token of the next page (None after the last), so a caller can stop and resume between calls."""
    client = service_client(connection_string).get_container_client(container)

    def fetch() -> tuple[list[Any], str | None]:
        pages = client.list_blobs(results_per_page=page_size).by_page(continuation_token=continuation)
        page = list(next(pages, []))
        return page, pages.continuation_token or None

    page, token = storage_call(connection_string, f"list container {container!r}", fetch)
    return [_ref_from_properties(container, f"{client.url}/{p.name}", p) for p in page], token
