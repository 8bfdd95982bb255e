"""The image hashes: ThumbHash as the reference encoder makes it, the perceptual hash's distances
on copies and on unrelated pictures, and the content digests (with storage's own Content-MD5,
read from Azurite through the real SDK).

tests/data/thumbhash/vectors.json holds what the reference encoder (npm ``thumbhash`` 0.1.1, by
the format's author) and Node's Math.cos returned for the PNGs beside it (make_vectors.py).
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import math
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from PIL import Image, ImageDraw

from devhost import scenes
from shared import image_hashes, js_math
from shared.duplicates import NEAR_DISTANCE
from shared.hash_bands import hamming
from shared.image_hashes import (
    ContentDigests,
    md5_hex_from_storage,
    perceptual_hash,
    thumb_hash,
    thumb_hash_bytes,
    thumb_hash_from_rgba,
)
from shared.settings import INPUT_CONTAINER

VECTORS_DIR = Path(__file__).resolve().parent / "data" / "thumbhash"
VECTORS = json.loads((VECTORS_DIR / "vectors.json").read_text())


def vector_image(name: str) -> Image.Image:
    return Image.open(VECTORS_DIR / f"{name}.png").convert("RGBA")


def mismatched_vectors() -> list[str]:
    return [name for name, expected in VECTORS["hashes"].items() if thumb_hash(vector_image(name)) != expected]


# ---- ThumbHash ------------------------------------------------------------------------------

def test_thumbhash_matches_the_reference_encoder_on_every_vector():
    assert len(VECTORS["hashes"]) >= 9
    assert mismatched_vectors() == []


def test_thumbhash_of_raw_rgba_matches_too():
    for name, expected in VECTORS["hashes"].items():
        image = vector_image(name)
        raw = thumb_hash_from_rgba(image.width, image.height, image.tobytes())
        assert base64.b64encode(raw).decode() == expected, name


def test_vector_check_catches_glibc_cosine_and_python_rounding(monkeypatch):
    """Negative controls: the two ways a straightforward port differs from the reference."""
    monkeypatch.setattr(js_math, "cos", math.cos)
    image_hashes._cosines.cache_clear()
    assert mismatched_vectors()
    monkeypatch.undo()
    image_hashes._cosines.cache_clear()
    monkeypatch.setattr(image_hashes, "_js_round", round)
    assert mismatched_vectors()
    monkeypatch.undo()
    assert mismatched_vectors() == []


def test_js_cosine_matches_node_to_the_bit():
    pairs = VECTORS["cos"]
    assert len(pairs) > 1000
    assert [x for x, want in pairs if js_math.cos(x) != want] == []
    assert any(math.cos(x) != want for x, want in pairs)  # the check can fail: glibc differs


def test_js_cosine_refuses_what_it_does_not_implement():
    with pytest.raises(ValueError, match="only"):
        js_math.cos(1e7)


def test_large_images_are_shrunk_and_the_hash_fits_its_column():
    big = scenes.scene((1600, 1200), seed=5)
    small = big.resize((100, 75), Image.Resampling.BOX)
    assert thumb_hash(big) == thumb_hash(small)
    raw = thumb_hash_bytes(big.convert("RGBA"))
    assert len(raw) <= 25 and len(thumb_hash(big)) <= 48
    transparent = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    ImageDraw.Draw(transparent).ellipse((50, 50, 250, 250), fill=(255, 0, 0, 255))
    assert len(thumb_hash_bytes(transparent)) <= 25


def test_raw_rgba_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="101x10"):
        thumb_hash_from_rgba(101, 10, bytes(101 * 10 * 4))
    with pytest.raises(ValueError, match="bytes of RGBA"):
        thumb_hash_from_rgba(10, 10, bytes(399))


# ---- Perceptual hash ------------------------------------------------------------------------

def jpeg(image: Image.Image, quality: int) -> Image.Image:
    return Image.open(io.BytesIO(scenes.jpeg(image, quality))).convert("RGB")


def cropped(image: Image.Image, fraction: float) -> Image.Image:
    dx, dy = int(image.width * fraction), int(image.height * fraction)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


COPIES = {
    "half size, JPEG q75": lambda im: jpeg(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS), 75),
    "quarter size, JPEG q60": lambda im: jpeg(im.resize((im.width // 4, im.height // 4), Image.Resampling.LANCZOS), 60),
    "2 % cut from each side": lambda im: cropped(im, 0.02),
    "2 % cut, half size, JPEG q80": lambda im: jpeg(cropped(im, 0.02).resize((im.width // 2, im.height // 2)), 80),
}


@pytest.fixture(scope="module")
def originals() -> list[Image.Image]:
    return [scenes.scene((800, 600), seed=seed) for seed in range(12)]


def copy_distances(originals: list[Image.Image], hasher=perceptual_hash) -> dict[str, int]:
    return {name: max(hamming(hasher(im), hasher(make(im))) for im in originals) for name, make in COPIES.items()}


def unrelated_distances(originals: list[Image.Image], hasher=perceptual_hash) -> list[int]:
    hashes = [hasher(im) for im in originals]
    return [hamming(a, b) for a, b in itertools.combinations(hashes, 2)]


def test_resized_reencoded_and_slightly_cropped_copies_are_within_k(originals):
    worst = copy_distances(originals)
    assert all(d <= NEAR_DISTANCE for d in worst.values()), worst


def test_unrelated_pictures_are_beyond_k(originals):
    distances = unrelated_distances(originals)
    assert len(distances) == 66 and min(distances) > NEAR_DISTANCE


def test_the_distance_checks_tell_hashes_apart(originals):
    """Negative controls: a hash of the exact pixels puts copies far apart; a hash of the mean
    colour alone puts unrelated pictures together."""
    def exact(im: Image.Image) -> int:
        return int.from_bytes(hashlib.sha256(im.convert("RGB").tobytes()).digest()[:8], "big")

    def mean_only(im: Image.Image) -> int:
        grey = im.convert("L").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
        return (1 << (grey // 4)) - 1

    assert any(d > NEAR_DISTANCE for d in copy_distances(originals, exact).values())
    assert min(unrelated_distances(originals, mean_only)) <= NEAR_DISTANCE


def test_perceptual_hash_is_signed_64_bit_and_flattens_alpha_on_white(originals):
    values = [perceptual_hash(im) for im in originals]
    assert all(-(1 << 63) <= v < 1 << 63 for v in values) and len(set(values)) == len(values)
    picture = originals[0].convert("RGBA")
    transparent = picture.copy()
    transparent.putalpha(0)
    white = Image.new("RGB", picture.size, (255, 255, 255))
    assert perceptual_hash(transparent) == perceptual_hash(white)
    assert perceptual_hash(picture) == perceptual_hash(originals[0])


def test_signed_hash_is_imagehash_int():
    """ImageHash's tests (JohannesBuchner/imagehash tests/test_hash_is_constant.py) give its pHash
    'ba8c84536bd3c366' as the integer -5004479592089271450: the signed reading stored here."""
    from shared.hash_bands import to_signed, to_unsigned

    assert to_signed(0xBA8C84536BD3C366) == -5004479592089271450
    assert f"{to_unsigned(-5004479592089271450):016x}" == "ba8c84536bd3c366"


def test_perceptual_hash_follows_the_imagehash_steps():
    """The DCT hash of a known 32x32 grey picture, worked out here step by step with numpy's
    own DCT matrix rather than scipy: median of the 8x8 lowest frequencies, rows first, MSB first."""
    import numpy as np

    pixels = np.fromfunction(lambda y, x: (x * 7 + y * 3) % 256 + 10 * np.sin(x * y / 50), (32, 32))
    grey = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "L")
    n = 32
    k = np.arange(n)
    basis = 2 * np.cos(np.pi * k[:, None] * (2 * k[None, :] + 1) / (2 * n))  # scipy's unnormalised DCT-II
    data = np.asarray(grey, dtype=np.float64)
    low = (basis @ data @ basis.T)[:8, :8]
    bits = "".join("1" if v > np.median(low) else "0" for v in low.flatten())
    unsigned = int(bits, 2)
    expected = unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned
    assert perceptual_hash(grey) == expected


# ---- Digests --------------------------------------------------------------------------------

def test_digests_over_chunks_equal_the_digest_of_the_whole():
    data = scenes.jpeg(scenes.scene((300, 200), seed=1))
    digests = ContentDigests()
    for start in range(0, len(data), 4096):
        digests.update(data[start:start + 4096])
    assert digests.md5_hex == hashlib.md5(data).hexdigest()
    assert digests.sha256_hex == hashlib.sha256(data).hexdigest() and digests.size == len(data)


def test_storage_md5_in_either_form_becomes_hex():
    raw = hashlib.md5(b"abc").digest()
    assert md5_hex_from_storage(bytearray(raw)) == md5_hex_from_storage(base64.b64encode(raw).decode()) == raw.hex()
    assert md5_hex_from_storage(None) is None and md5_hex_from_storage(bytearray()) is None
    with pytest.raises(ValueError, match="16 bytes"):
        md5_hex_from_storage(b"\x01" * 15)
    with pytest.raises(ValueError, match="not the base64"):
        md5_hex_from_storage("not base64!")


def test_azurite_holds_content_md5_for_a_single_shot_upload_not_for_a_block_list(azurite):
    """Put Blob stores the MD5 the service computes; Put Block List stores none unless the client
    sends one (learn.microsoft.com/rest/api/storageservices/put-blob, put-block-list)."""
    data = scenes.jpeg(scenes.scene((200, 150), seed=2))
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    single = service.get_blob_client(INPUT_CONTAINER, "md5/single.jpg")
    single.upload_blob(data, overwrite=True)
    stored = single.get_blob_properties().content_settings.content_md5
    assert md5_hex_from_storage(stored) == hashlib.md5(data).hexdigest()

    blocks = service.get_blob_client(INPUT_CONTAINER, "md5/blocks.jpg")
    ids = []
    for i, start in enumerate(range(0, len(data), 2048)):
        block_id = base64.b64encode(f"{i:08d}".encode()).decode()
        blocks.stage_block(block_id, data[start:start + 2048])
        ids.append(block_id)
    blocks.commit_block_list(ids)
    assert md5_hex_from_storage(blocks.get_blob_properties().content_settings.content_md5) is None
    assert blocks.download_blob().readall() == data


def test_an_image_mode_without_a_conversion_gets_a_clear_error():
    lab = scenes.scene((40, 30), seed=1).convert("LAB")
    with pytest.raises(ValueError, match="mode LAB: convert it to RGB"):
        perceptual_hash(lab)
    premultiplied = Image.new("La", (8, 8))
    with pytest.raises(ValueError, match="mode La"):
        thumb_hash(premultiplied)
