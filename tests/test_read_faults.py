"""Storage faults while the extractor reads past the first chunk stay transient, on every path.

Images whose description needs several ranged requests (ICC and XMP past the head, a TIFF whose
directory sits after its pixels, a TIFF whose EXIF and GPS sub-directories lie far apart, a GIF
of many frames) go through ExtractMetadata's function folder and Microsoft's worker against real
Azurite. The storage SDK's ``download_blob`` fails the k-th request (k = 2, 3, …) with the faults
Azure gives (503, timeout, reset connection, a body that breaks off): every one must come back
``transient``, and a version overwritten at the k-th request ``superseded``. The negative control
runs the same matrix without the fetch wrapper and shows the cases it exists for.
"""

from __future__ import annotations

import io
import itertools
import json
import struct
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    IncompleteReadError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobClient
from PIL import ImageCms, PngImagePlugin

import shared.activities
from devhost import samples
from devhost.functions import activity_call, discover
from devhost.worker import FunctionWorker
from shared.blob_access import upload_bytes
from shared.extraction import extract_from_bytes
from shared.settings import INPUT_CONTAINER

SPECS = discover()
# Fields that depend on how the bytes were read, not on the image.
READ_FIELDS = ("bytes_read", "read_requests")


def _icc(size: int) -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return profile + b"\x00" * (size - len(profile))


def tiff_with_far_subdirectories(width: int = 512, height: int = 400, gap: int = 100_000) -> bytes:
    """IFD0 in the head, the pixels next, then the EXIF sub-IFD, and the GPS sub-IFD ``gap``
    bytes further: Pillow reads each sub-directory lazily (``getexif().get_ifd``), after
    ``Image.open``, where the extractor turns a broken directory into missing fields."""
    def ifd(entries: list[tuple[int, int, int, bytes]], at: int) -> bytes:
        extra_at = at + 2 + 12 * len(entries) + 4
        head, extra = struct.pack("<H", len(entries)), b""
        for tag, kind, count, value in sorted(entries):
            if len(value) <= 4:
                head += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")
            else:
                head += struct.pack("<HHII", tag, kind, count, extra_at + len(extra))
                extra += value + (b"\x00" if len(value) % 2 else b"")
        return head + struct.pack("<I", 0) + extra

    def text(s: str) -> bytes:
        return s.encode() + b"\x00"

    def rationals(*pairs: tuple[int, int]) -> bytes:
        return b"".join(struct.pack("<II", a, b) for a, b in pairs)

    pixels = bytes((x * 7 + y * 13) % 256 for y in range(height) for x in range(width))
    data_at = 4096
    exif_at = data_at + len(pixels)
    exif = ifd([(36867, 2, 20, text("2019:06:07 08:09:10")), (33437, 5, 1, rationals((28, 10)))], exif_at)
    gps_at = exif_at + len(exif) + gap
    gps = ifd([(1, 2, 2, text("N")), (2, 5, 3, rationals((48, 1), (51, 1), (30, 1))),
               (3, 2, 2, text("E")), (4, 5, 3, rationals((2, 1), (17, 1), (40, 1)))], gps_at)
    long_, short = (lambda v: struct.pack("<I", v)), (lambda v: struct.pack("<H", v))
    ifd0 = ifd([(256, 4, 1, long_(width)), (257, 4, 1, long_(height)), (258, 3, 1, short(8)),
                (259, 3, 1, short(1)), (262, 3, 1, short(1)), (271, 2, 6, text("Leica")),
                (272, 2, 4, text("M11")), (273, 4, 1, long_(data_at)), (277, 3, 1, short(1)),
                (278, 4, 1, long_(height)), (279, 4, 1, long_(len(pixels))),
                (34665, 4, 1, long_(exif_at)), (34853, 4, 1, long_(gps_at))], 8)
    head = b"II*\x00" + long_(8) + ifd0
    return head.ljust(data_at, b"\x00") + pixels + exif + b"\x00" * gap + gps


def multi_request_images() -> dict[str, bytes]:
    """Each needs 2-3 ranged requests of the default 64 KiB head size."""
    png_info = PngImagePlugin.PngInfo()
    png_info.add_itxt("XML:com.adobe.xmp", samples.xmp_packet(
        taken="2021-04-05T06:07:08-07:00", rating="4", subjects=[f"k{i}" for i in range(5000)]))
    png = io.BytesIO()
    samples.picture((200, 150), seed=2).save(png, "PNG", pnginfo=png_info)
    return {
        "icc-past-head.jpg": samples.encode(
            samples.picture((800, 600), seed=3), "JPEG",
            samples.Exif(make="Nikon", model="Z 9", orientation=6, taken="2022:02:22 22:22:22",
                         gps=(35.6, 139.7, 40.0)), icc_profile=_icc(150_000), quality=85),
        "xmp-past-64k.jpg": samples.encode(
            samples.picture((800, 600), seed=4), "JPEG", samples.Exif(make="Nikon", model="Z 9"),
            icc_profile=_icc(90_000), xmp=samples.xmp_packet(
                taken="2021-04-05T06:07:08-07:00", rating="4", subjects=["far", "xmp"])),
        "xmp-past-64k.png": png.getvalue(),
        "directory-at-end.tiff": samples.encode(
            samples.noise((400, 300)), "TIFF", samples.Exif(make="Leica", model="M11"),
            compression="tiff_deflate"),
        "far-subdirectories.tiff": tiff_with_far_subdirectories(),
        "many-frames.gif": samples.animated_gif(60, (96, 96)),
    }


def _http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"The server answered {status}")
    error.status_code = status
    return error


FAULTS: dict[str, Callable[[], Exception]] = {
    "503": lambda: _http_error(503),
    "timeout": lambda: ServiceRequestError("Connection timed out"),
    "reset": lambda: ServiceResponseError("Connection aborted: ConnectionResetError(104, 'Connection reset by peer')"),
    "body broke off": lambda: IncompleteReadError(message="IncompleteRead(65536 bytes read, 34000 more expected)"),
}


class FailingReads:
    """Wraps BlobClient.download_blob: request number ``fail_at`` (1 = the head) raises ``fault``
    or, with ``overwrite``, first uploads a new version of the blob (a real 412 from Azurite)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, storage: str) -> None:
        self.storage = storage
        self.calls = 0
        self.fail_at: int | None = None
        self.fault: Callable[[], Exception] | None = None
        self.overwrite: bytes | None = None
        real = BlobClient.download_blob
        reads = self

        def download_blob(client: BlobClient, *args: Any, **kwargs: Any) -> Any:
            reads.calls += 1
            if reads.calls == reads.fail_at:
                if reads.overwrite is not None:
                    upload_bytes(reads.storage, client.container_name, client.blob_name, reads.overwrite)
                elif reads.fault is not None:
                    raise reads.fault()
            return real(client, *args, **kwargs)

        monkeypatch.setattr(BlobClient, "download_blob", download_blob)

    def arm(self, fail_at: int | None, fault: Callable[[], Exception] | None = None,
            overwrite: bytes | None = None) -> None:
        self.calls, self.fail_at, self.fault, self.overwrite = 0, fail_at, fault, overwrite


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    return multi_request_images()


@pytest.fixture
def extract(worker: FunctionWorker) -> Callable[[dict[str, Any]], dict[str, Any]]:
    call = activity_call(worker, SPECS["ExtractMetadata"])
    return lambda blob: json.loads(call(json.dumps({"blob": blob, "instanceId": "faults"})))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch, storage_env: str) -> FailingReads:
    return FailingReads(monkeypatch, storage_env)


def _matrix(images: dict[str, bytes], storage: str, reads: FailingReads,
            extract: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[tuple[str, int, str], dict[str, Any]]:
    """Every image, every request after the head, the faults in turn -> the activity's answer."""
    answers: dict[tuple[str, int, str], dict[str, Any]] = {}
    kinds = itertools.cycle(FAULTS)
    for name, data in images.items():
        ref = upload_bytes(storage, INPUT_CONTAINER, f"faults/{name}", data).to_dict()
        reads.arm(None)
        clean = extract(ref)
        assert clean["outcome"] == "ok", (name, clean)
        requests = clean["metadata"]["read_requests"]
        assert requests >= 2, f"{name} must need more than the head to be described"
        for k in range(2, requests + 1):
            kind = next(kinds)
            reads.arm(k, FAULTS[kind])
            answers[(name, k, kind)] = {"answer": extract(ref), "clean": clean}
    return answers


def _wrong(answers: dict[tuple[str, int, str], dict[str, Any]]) -> dict[tuple[str, int, str], str]:
    wrong = {}
    for case, seen in answers.items():
        answer = seen["answer"]
        if answer["outcome"] != "transient":
            clean = seen["clean"]["metadata"]
            lost = sorted(f for f, v in clean.items() if f not in READ_FIELDS
                          and v != (answer.get("metadata") or {}).get(f))
            wrong[case] = f"{answer['outcome']}: {answer.get('reason') or 'fields lost ' + str(lost)}"
    return wrong


def test_every_storage_fault_past_the_head_is_transient(images, storage_env, reads, extract):
    answers = _matrix(images, storage_env, reads, extract)
    assert len(answers) >= 8
    assert _wrong(answers) == {}
    for (_, _, kind), seen in answers.items():
        assert "blob storage" in seen["answer"]["reason"], (kind, seen["answer"])


def _swallowing_extractor(monkeypatch: pytest.MonkeyPatch) -> None:
    """An extractor that, like Pillow's plugins once did, turns a failed read into missing bytes."""
    real = shared.activities.extract_from_ranges

    def extract_from_ranges(size, fetch, limits, first_chunk=b""):  # noqa: ANN001, ANN202
        def careless(offset: int, length: int) -> bytes:
            try:
                return fetch(offset, length)
            except Exception:  # noqa: BLE001 - the carelessness under test
                return b""
        return real(size, careless, limits, first_chunk=first_chunk)

    monkeypatch.setattr(shared.activities, "extract_from_ranges", extract_from_ranges)


def test_the_fetch_wrapper_keeps_faults_transient_even_when_the_extractor_swallows_them(
        images, storage_env, reads, extract, monkeypatch):
    _swallowing_extractor(monkeypatch)
    assert _wrong(_matrix(images, storage_env, reads, extract)) == {}


def test_without_the_fetch_wrapper_a_swallowing_extractor_loses_faults(
        images, storage_env, reads, extract, monkeypatch):
    class Unguarded:  # the fetch handed over as it is, as before the wrapper
        def __init__(self, fetch: Callable[[int, int], bytes]) -> None:
            self.fetch = fetch

        def __enter__(self) -> Callable[[int, int], bytes]:
            return self.fetch

        def __exit__(self, *exc: object) -> None:
            return None

    _swallowing_extractor(monkeypatch)
    monkeypatch.setattr(shared.activities, "GuardedFetch", Unguarded)
    wrong = _wrong(_matrix(images, storage_env, reads, extract))
    assert wrong, "a swallowed fault must show as a rejection or lost fields without the wrapper"


def test_a_version_overwritten_at_any_later_request_is_superseded(images, storage_env, reads, extract):
    for name, data in images.items():
        blob = f"faults/over-{name}"
        ref = upload_bytes(storage_env, INPUT_CONTAINER, blob, data).to_dict()
        requests = extract_from_bytes(data).read_requests
        for k in range(2, requests + 1):
            reads.arm(k, overwrite=b"a newer version, %d" % k)
            answer = extract(ref)
            assert answer["outcome"] == "superseded", (name, k, answer)
            ref = upload_bytes(storage_env, INPUT_CONTAINER, blob, data).to_dict()
