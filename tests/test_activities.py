"""The two activities through their function folders and Microsoft's worker, on real Azurite and a
real database: the input arrives as TypedData json and the output leaves as the worker encodes it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devhost import samples
from devhost.functions import activity_call, discover
from devhost.worker import FunctionWorker
from shared.blob_access import check_storage, service_client, upload_bytes
from shared.models import BlobRef, ImageRecord
from shared.store import SqlStore

SPECS = discover()


@pytest.fixture
def activity(worker: FunctionWorker):
    def call(name: str, payload: Any) -> Any:
        return json.loads(activity_call(worker, SPECS[name])(json.dumps(payload)))

    return call


def test_extract_reads_the_head_by_range_and_describes_the_image(activity, storage_env):
    exif = samples.Exif(orientation=3, make="Nikon", model="Z6", taken="2023:01:02 03:04:05")
    data = samples.encode(samples.picture((1600, 1200)), "JPEG", exif, quality=90)
    ref = upload_bytes(storage_env, "images-input", "act/camera.jpg", data)
    out = activity("ExtractMetadata", {"blob": ref.to_dict()})
    assert out["outcome"] == "ok", out
    assert out["size_bytes"] == len(data)
    meta = out["metadata"]
    assert (meta["width"], meta["height"], meta["format"]) == (1600, 1200, "JPEG")
    assert meta["camera_make"] == "Nikon" and meta["orientation"] == 3
    assert meta["read_requests"] == 1 and meta["bytes_read"] <= 64 * 1024
    assert out["last_modified"] == ref.last_modified


def test_extract_rejects_zero_byte_and_text_blobs(activity, storage_env):
    for name, data in (("act/empty.jpg", b""), ("act/notes.jpg", b"hello, not an image")):
        ref = upload_bytes(storage_env, "images-input", name, data)
        out = activity("ExtractMetadata", {"blob": ref.to_dict()})
        assert out["outcome"] == "rejected", out
        assert out["reason"] and out["size_bytes"] == len(data) and out["last_modified"]


def test_extract_of_overwritten_or_deleted_version_is_superseded_not_misread(activity, storage_env):
    old = upload_bytes(storage_env, "images-input", "act/changing.png",
                       samples.encode(samples.picture((10, 10)), "PNG"))
    upload_bytes(storage_env, "images-input", "act/changing.png", samples.encode(samples.picture((20, 20)), "PNG"))
    out = activity("ExtractMetadata", {"blob": old.to_dict()})
    assert out == {"outcome": "superseded", "reason": out["reason"]} and "overwritten" in out["reason"]
    gone = upload_bytes(storage_env, "images-input", "act/gone.png", samples.encode(samples.picture((9, 9)), "PNG"))
    service_client(storage_env).get_blob_client("images-input", "act/gone.png").delete_blob()
    out = activity("ExtractMetadata", {"blob": gone.to_dict()})
    assert out["outcome"] == "superseded" and "deleted" in out["reason"]
    assert len(out) == 2  # nothing else: no size, no time, nothing a row could be made of


def test_unreachable_storage_is_transient_and_names_azurite(activity, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage",
                       "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                       "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    out = activity("ExtractMetadata", {"blob": BlobRef("images-input", "x.jpg", "0x1").to_dict()})
    assert out["outcome"] == "transient"
    assert "Azurite" in out["reason"]
    problem = check_storage("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                            "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    assert problem and "Azurite" in problem


def test_store_writes_one_row_and_reports_configuration_errors(activity, sql_env, monkeypatch):
    record = ImageRecord.for_blob(BlobRef("images-input", "a.jpg", "0x1", size=10,
                                          last_modified="2026-01-01T00:00:00+00:00"), "processed")
    assert activity("StoreMetadata", {"record": record.to_dict()}) == {"outcome": "ok", "applied": True}
    assert activity("StoreMetadata", {"record": record.to_dict()}) == {"outcome": "ok", "applied": True}
    assert len(SqlStore(sql_env).rows()) == 1
    monkeypatch.setenv("SqlConnectionString", "Driver={No Such Driver};Database=x;")
    out = activity("StoreMetadata", {"record": record.to_dict()})
    assert out["outcome"] == "permanent" and "not installed" in out["reason"]
    monkeypatch.delenv("SqlConnectionString")
    out = activity("StoreMetadata", {"record": record.to_dict()})
    assert out["outcome"] == "permanent" and "SqlConnectionString is missing" in out["reason"]


@pytest.mark.parametrize("any_db_cs", ["sqlite", "postgresql"], indirect=True)
def test_store_asks_storage_when_two_versions_share_a_last_modified(activity, storage_env, any_db_cs,
                                                                    monkeypatch):
    """Two uploads within one second, no sequencer: the late run of the older one is not written
    over the newer row (storage says which ETag is current), and the current one's late run is."""
    monkeypatch.setenv("SqlConnectionString", any_db_cs)
    name = f"tie-{any_db_cs[-12:].replace('/', '')}.png"
    old = upload_bytes(storage_env, "images-input", name, samples.png_header_only(2, 2))
    new = upload_bytes(storage_env, "images-input", name, samples.png_header_only(3, 3))
    same_second = "2026-01-01T00:00:00+00:00"

    def run(blob: BlobRef, width: int) -> dict:
        ref = BlobRef(blob.container, blob.name, blob.etag, size=10, last_modified=same_second)
        record = ImageRecord.for_blob(ref, "processed")
        record.metadata.width = width
        return activity("StoreMetadata", {"record": record.to_dict()})

    assert run(old, 2) == {"outcome": "ok", "applied": True}  # no row yet
    assert run(new, 3) == {"outcome": "ok", "applied": True}  # a tie: storage says it is current
    assert run(old, 2) == {"outcome": "ok", "applied": False, "reason": "storage holds another version of the blob"}
    [row] = SqlStore(any_db_cs).rows()
    assert (row["ETag"], row["Width"]) == (new.etag, 3)
    assert run(new, 4) == {"outcome": "ok", "applied": True}  # the same version again: no tie
    assert SqlStore(any_db_cs).rows()[0]["Width"] == 4
