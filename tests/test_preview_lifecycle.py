"""Previews through their whole life, on Azurite and a real database (SQLite and PostgreSQL): ImageOrchestrator replayed
through Microsoft's worker by the local engine, the real MakePreview, ExtractMetadata and
StoreMetadata bodies, Event Grid events handled by shared.events.

The invariant checked after every step: the preview container holds exactly the previews the
rows name (none orphaned, none missing)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import uuid
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image

from devhost import samples
from devhost.eventgrid import Sequencer, blob_created_event, blob_deleted_event
from shared import preview_activity
from shared.activities import store_metadata
from shared.blob_access import service_client, upload_bytes
from shared.image_hashes import perceptual_hash, thumb_hash
from shared.models import BlobRef, ImageMetadata, ImagePreview, ImageRecord
from shared.orchestration import orchestration_input
from shared.preview_blobs import all_preview_names, delete_previews, preview_key, preview_name, upload_preview
from shared.previews import PreviewOptions, render_previews
from shared.settings import DEFAULT_PREVIEW_CONTAINER, INPUT_CONTAINER
from shared.store import SqlStore
from shared.store.store import previews_of
from tests.durable import DELAYS, counting_client
from tests.test_e2e_previews import mismatch
from tests.test_events import Scenario

PREVIEWS = DEFAULT_PREVIEW_CONTAINER
LIFE = "life/"  # a fresh folder per test (autouse fixture below): both databases share one Azurite


@pytest.fixture(autouse=True)
def fresh_folder() -> None:
    global LIFE
    LIFE = f"life-{uuid.uuid4().hex[:8]}/"


def jpeg(width: int, colour=(200, 30, 30)) -> bytes:
    return samples.encode(Image.new("RGB", (width, width * 3 // 4), colour), "JPEG",
                          samples.Exif(orientation=1, gps=(48.85, 2.29, 30.0)))


@pytest.fixture
def scenario(storage_env: str, any_db_cs: str, monkeypatch: pytest.MonkeyPatch, orchestrators) -> Scenario:
    monkeypatch.setenv("SqlConnectionString", any_db_cs)
    return Scenario(storage_env, any_db_cs, orchestrators)


def mine(scenario: Scenario, prefix: str) -> set[str]:
    return {n for n in all_preview_names(scenario.storage, PREVIEWS) if n.startswith(prefix)}


def expected(scenario: Scenario, prefix: str) -> set[str]:
    """The previews the rows of blobs under ``prefix`` name (the Previews column)."""
    names: set[str] = set()
    for row in SqlStore(scenario.sql).rows():
        if row["BlobName"].startswith(prefix):
            names |= set((previews_of(row["Previews"]) or {}).values())
    return names


def run(scenario: Scenario, ref: BlobRef, instance_id: str, previews: bool = True) -> dict[str, Any]:
    scenario.engine.start("ImageOrchestrator", instance_id,
                          json.dumps(orchestration_input(ref, DELAYS, previews=previews)))
    scenario.engine.run_until_idle()
    return scenario.engine.status(instance_id)


def test_naming_keeps_versions_apart_and_never_matches_a_longer_name():
    assert preview_name("a/b.jpg", '"0x8DC"', 256, "webp") == "a/b.jpg/0x8DC/256.webp"
    long = "x" * 1000
    assert preview_key(long).startswith("~long/") and len(preview_name(long, "0x8DC", 1024, "webp")) < 1024
    assert preview_key("ends-with-dot.") != "ends-with-dot."


def test_delete_previews_leaves_other_blobs_sharing_the_prefix(storage_env):
    for name in ("pre/a.jpg/0x1/256.webp", "pre/a.jpg/0x2/256.webp", "pre/a.jpg/c.png/0x3/256.webp",
                 "pre/a.jpg.bak/0x4/256.webp"):
        upload_preview(storage_env, PREVIEWS, name, b"x", "image/webp")
    assert delete_previews(storage_env, PREVIEWS, "pre/a.jpg", keep="0x2") == ["pre/a.jpg/0x1/256.webp"]
    left = {n for n in all_preview_names(storage_env, PREVIEWS) if n.startswith("pre/")}
    assert left == {"pre/a.jpg/0x2/256.webp", "pre/a.jpg/c.png/0x3/256.webp", "pre/a.jpg.bak/0x4/256.webp"}
    assert delete_previews(storage_env, PREVIEWS, "pre/a.jpg") == ["pre/a.jpg/0x2/256.webp"]
    assert delete_previews(storage_env, PREVIEWS, "pre/never.jpg") == []


def test_upload_makes_previews_the_row_names_and_the_previews_are_clean(scenario):
    ref = upload_bytes(scenario.storage, INPUT_CONTAINER, LIFE + "one.jpg", jpeg(2000))
    status = run(scenario, ref, "one")
    assert status["output"]["status"] == "processed"
    assert mine(scenario, LIFE + "one.jpg/") == expected(scenario, LIFE + "one.jpg") == {
        preview_name(ref.name, ref.etag, size, "webp") for size in (256, 1024)}
    blob = service_client(scenario.storage).get_blob_client(PREVIEWS, preview_name(ref.name, ref.etag, 256, "webp"))
    props = blob.get_blob_properties()
    assert props.content_settings.content_type == "image/webp"
    assert "immutable" in props.content_settings.cache_control
    preview = Image.open(io.BytesIO(blob.download_blob().readall()))
    assert preview.size == (256, 192) and not preview.getexif()
    [row] = [r for r in SqlStore(scenario.sql).rows() if r["BlobName"] == LIFE + "one.jpg"]
    data = jpeg(2000)
    assert row["ContentSHA256"] == hashlib.sha256(data).hexdigest()
    assert row["ContentMD5"] == hashlib.md5(data).hexdigest()
    small = render_previews(data, PreviewOptions()).small  # the pixels the hashes are taken from
    assert row["ThumbHash"] == thumb_hash(small) != thumb_hash(Image.new("RGB", (256, 192), (0, 0, 255)))
    assert row["PerceptualHash"] == perceptual_hash(small)


def test_overwrite_replaces_the_previews_and_a_late_old_run_leaves_none(scenario):
    name = LIFE + "two.jpg"
    v1 = upload_bytes(scenario.storage, INPUT_CONTAINER, name, jpeg(1600))
    run(scenario, v1, "v1")
    old = mine(scenario, name + "/")
    v2 = upload_bytes(scenario.storage, INPUT_CONTAINER, name, jpeg(1200, (30, 30, 200)))
    run(scenario, v2, "v2")
    now = mine(scenario, name + "/")
    assert now == expected(scenario, name) and not now & old  # the older version's are gone
    late = run(scenario, v1, "v1-late")  # v1 again (a redelivery): superseded, leaves nothing
    assert late["output"]["status"] == "superseded"
    assert mine(scenario, name + "/") == now


def test_a_run_whose_write_is_not_applied_deletes_its_own_previews(scenario):
    name = LIFE + "race.jpg"
    v1 = upload_bytes(scenario.storage, INPUT_CONTAINER, name, jpeg(900))
    v2 = upload_bytes(scenario.storage, INPUT_CONTAINER, name, jpeg(800, (30, 200, 30)))
    run(scenario, v2, "v2")
    # v1's slow run read its bytes before the overwrite and uploaded its previews after v2's row.
    slow = {str(s): preview_name(name, v1.etag, s, "webp") for s in (256, 1024)}
    for preview in slow.values():
        upload_preview(scenario.storage, PREVIEWS, preview, b"RIFF", "image/webp")
    record = ImageRecord.for_blob(replace(v1, last_modified="2000-01-01T00:00:00+00:00"), "processed",
                                  metadata=ImageMetadata(format="JPEG"), preview=ImagePreview(previews=slow))
    out = store_metadata({"record": record.to_dict()})
    assert out == {"outcome": "ok", "applied": False, "reason": out.get("reason")} or out["applied"] is False
    assert mine(scenario, name + "/") == expected(scenario, name)
    assert all(v2.etag in n for n in mine(scenario, name + "/"))


def test_negative_control_without_tidying_the_superseded_previews_stay(scenario, monkeypatch):
    """The invariant check above catches leftovers: with tidying switched off they remain."""
    name = LIFE + "untidy.jpg"
    monkeypatch.setattr("shared.activities.tidy_previews", lambda *a, **k: None)
    v1 = upload_bytes(scenario.storage, INPUT_CONTAINER, name, jpeg(900))
    run(scenario, v1, "v1")
    v2 = upload_bytes(scenario.storage, INPUT_CONTAINER, name, jpeg(800))
    run(scenario, v2, "v2")
    assert mine(scenario, name + "/") != expected(scenario, name)
    orphans, missing = mismatch(scenario.storage, scenario.sql, name)  # the chaos test's check, too
    assert orphans and all(v1.etag in n for n in orphans) and not missing


def test_delete_event_removes_the_previews_and_reupload_brings_new_ones(scenario):
    name = LIFE + "three.jpg"
    seq = Sequencer()
    v1 = upload_bytes(scenario.storage, INPUT_CONTAINER, name, jpeg(1000))

    async def script(client) -> None:
        await scenario.deliver(client, blob_created_event(v1, seq.next()))
        scenario.engine.run_until_idle()
        assert mine(scenario, name + "/") == expected(scenario, name) != set()
        service_client(scenario.storage).get_blob_client(INPUT_CONTAINER, name).delete_blob()
        [outcome] = await scenario.deliver(client, blob_deleted_event(v1, seq.next()))
        assert outcome.action == "deleted"
        assert mine(scenario, name + "/") == set()
        v2 = upload_bytes(scenario.storage, INPUT_CONTAINER, name, jpeg(700))
        await scenario.deliver(client, blob_created_event(v2, seq.next()))
        scenario.engine.run_until_idle()
        now = mine(scenario, name + "/")
        assert now == expected(scenario, name) and all(v2.etag in n for n in now) and len(now) == 2

    asyncio.run(_with_client(scenario, script))


async def _with_client(scenario: Scenario, script) -> None:
    async with counting_client(scenario.engine) as client:
        await script(client)


def test_undecodable_pixels_still_get_their_row_with_the_reason(scenario):
    good = samples.encode(samples.noise((800, 600)), "JPEG")
    ref = upload_bytes(scenario.storage, INPUT_CONTAINER, LIFE + "broken.jpg", good[: len(good) // 3])
    status = run(scenario, ref, "broken")
    [row] = [r for r in SqlStore(scenario.sql).rows() if r["BlobName"] == LIFE + "broken.jpg"]
    assert status["output"]["status"] == row["Status"] == "processed"
    assert "preview: the pixels cannot be decoded" in row["MetadataWarnings"]
    assert mine(scenario, LIFE + "broken.jpg/") == set()
    assert row["Previews"] is None and row["ThumbHash"] is None and row["PerceptualHash"] is None
    assert row["ContentSHA256"] == hashlib.sha256(good[: len(good) // 3]).hexdigest()  # bytes were read


def test_a_bomb_gets_its_row_and_no_preview(scenario):
    ref = upload_bytes(scenario.storage, INPUT_CONTAINER, LIFE + "bomb.png", samples.png_header_only(30000, 30000))
    run(scenario, ref, "bomb")
    [row] = [r for r in SqlStore(scenario.sql).rows() if r["BlobName"] == LIFE + "bomb.png"]
    assert row["Status"] == "rejected"  # extraction rejects it by the same limit
    assert mine(scenario, LIFE + "bomb.png/") == set()


def test_a_picture_smaller_than_both_sizes_is_uploaded_once(scenario):
    ref = upload_bytes(scenario.storage, INPUT_CONTAINER, LIFE + "icon.png",
                       samples.encode(Image.new("RGB", (40, 30), (9, 9, 9)), "PNG"))
    run(scenario, ref, "icon")
    [row] = [r for r in SqlStore(scenario.sql).rows() if r["BlobName"] == LIFE + "icon.png"]
    name = preview_name(ref.name, ref.etag, 256, "webp")
    assert previews_of(row["Previews"]) == {"256": name, "1024": name}
    assert mine(scenario, LIFE + "icon.png/") == {name}


def test_previews_off_writes_none(scenario, monkeypatch):
    monkeypatch.setenv("PreviewContainer", "")
    ref = upload_bytes(scenario.storage, INPUT_CONTAINER, LIFE + "off.jpg", jpeg(500))
    out = preview_activity.make_preview({"blob": ref.to_dict()})
    assert out == {"outcome": "ok", "preview": {"previews": None, "warnings": []}}
    assert mine(scenario, LIFE + "off.jpg/") == set()


def test_unreachable_storage_is_transient(monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage",
                       "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                       "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    out = preview_activity.make_preview({"blob": BlobRef(INPUT_CONTAINER, "x.jpg", "0x1").to_dict()})
    assert out["outcome"] == "transient" and "Azurite" in out["reason"]
