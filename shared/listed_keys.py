"""Which BlobKeys a reconciliation pass listed, kept between its activities in append blobs.

The pass lists the container page by page (one activity each), then pages through the table by
BlobKey; a row whose key was not listed is a candidate for "blob gone". The listing's keys must
outlive each activity and any host restart, and be read back by key range, so they live in the
host's storage account (container ``reconcile-state``), one append blob per key bucket and pass:
``<pass id>/<first two hex chars of the BlobKey>`` (256 buckets). A listing page appends each of
its keys to its bucket (one Append Block per bucket it touches, at most 256 per page); a table
page (rows in BlobKey order, so one or two buckets) downloads only the buckets its keys fall in.

Each key is stored as its first 8 bytes (BlobKey is hex SHA-256): two distinct keys share a
prefix with probability about n / 2**64 per row (5e-13 at 10 M), and a shared prefix only makes a
gone blob look listed, which leaves its row for the next pass (nothing is ever wrongly marked:
a row not listed is checked in storage before it is marked). An activity that runs twice appends
its keys twice: membership does not mind. The pass deletes its blobs at its end; a pass that was
terminated leaves its blobs, which the next pass's end deletes (``delete_all``).

Per million blobs: 8 MB of state, ceil(N / 5,000) x (up to 256) Append Block calls, and per
table page one or two Get Blob calls of ~31 KB each (docs/events-and-reconciliation.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from shared.blob_access import service_client, storage_call
from shared.settings import StorageTarget

STATE_CONTAINER = "reconcile-state"
BUCKET_CHARS = 2
KEY_BYTES = 8


@dataclass
class StateIO:
    """What one call cost in the host's storage."""

    calls: int = 0
    bytes: int = 0


def bucket_of(key: str) -> str:
    return key[:BUCKET_CHARS]


def _short(key: str) -> bytes:
    return bytes.fromhex(key[:KEY_BYTES * 2])


def _blob(target: StorageTarget, pass_id: str, bucket: str):  # noqa: ANN202 - azure BlobClient
    return service_client(target).get_blob_client(STATE_CONTAINER, f"{pass_id}/{bucket}")


def _append(target: StorageTarget, pass_id: str, bucket: str, data: bytes) -> int:
    """Append to the bucket's blob, creating the container and blob on first use; the calls made."""
    blob = _blob(target, pass_id, bucket)
    calls = 0
    for _ in range(3):
        try:
            calls += 1
            storage_call(target, f"append to {STATE_CONTAINER}/{pass_id}/{bucket}", lambda: blob.append_block(data))
            return calls
        except ResourceNotFoundError:
            pass
        try:
            calls += 1
            storage_call(target, f"create {STATE_CONTAINER}/{pass_id}/{bucket}",
                         lambda: blob.create_append_blob(if_none_match="*"))
        except ResourceExistsError:
            pass
        except ResourceNotFoundError:
            calls += 1
            try:
                storage_call(target, f"create container {STATE_CONTAINER}",
                             lambda: service_client(target).create_container(STATE_CONTAINER))
            except ResourceExistsError:
                pass
    raise RuntimeError(f"could not append to {STATE_CONTAINER}/{pass_id}/{bucket}")


def append_listed(target: StorageTarget, pass_id: str, keys: Iterable[str], pool: ThreadPoolExecutor) -> StateIO:
    """Record that these BlobKeys were listed in this pass (one Append Block per bucket)."""
    by_bucket: dict[str, bytearray] = defaultdict(bytearray)
    for key in keys:
        by_bucket[bucket_of(key)] += _short(key)
    io = StateIO(bytes=sum(len(v) for v in by_bucket.values()))
    for calls in pool.map(lambda item: _append(target, pass_id, item[0], bytes(item[1])), by_bucket.items()):
        io.calls += calls
    return io


def load_listed(target: StorageTarget, pass_id: str, buckets: Iterable[str], pool: ThreadPoolExecutor
                ) -> tuple[set[bytes], StateIO]:
    """The listed key prefixes of these buckets (a bucket never appended to is empty)."""

    def read(bucket: str) -> bytes:
        blob = _blob(target, pass_id, bucket)
        try:
            return storage_call(target, f"read {STATE_CONTAINER}/{pass_id}/{bucket}",
                                lambda: blob.download_blob().readall())
        except ResourceNotFoundError:
            return b""

    io = StateIO()
    listed: set[bytes] = set()
    for data in pool.map(read, sorted(set(buckets))):
        io.calls += 1
        io.bytes += len(data)
        listed.update(data[i:i + KEY_BYTES] for i in range(0, len(data), KEY_BYTES))
    return listed, io


def was_listed(listed: set[bytes], key: str) -> bool:
    return _short(key) in listed


def delete_all(target: StorageTarget, pool: ThreadPoolExecutor) -> StateIO:
    """Delete every pass's state (the pass that calls it is the only one running: a singleton)."""
    container = service_client(target).get_container_client(STATE_CONTAINER)
    try:
        names = storage_call(target, f"list {STATE_CONTAINER}", lambda: [b.name for b in container.list_blobs()])
    except ResourceNotFoundError:
        return StateIO(calls=1)

    def delete(name: str) -> None:
        try:
            storage_call(target, f"delete {STATE_CONTAINER}/{name}", lambda: container.delete_blob(name))
        except ResourceNotFoundError:
            pass

    list(pool.map(delete, names))
    return StateIO(calls=1 + len(names))
