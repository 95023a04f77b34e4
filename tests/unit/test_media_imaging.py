"""Pillow work on in-memory images: decoding, bombs, EXIF evidence, stripped copies, comparison."""

import io
import struct
import zlib
from datetime import UTC, datetime

import pytest
from PIL import ExifTags, Image, ImageDraw

from services.media import domain, imaging
from services.media.domain import Rejection

MAX_PIXELS = 10_000_000


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def noisy(size=(256, 192)) -> Image.Image:
    """Random pixels: compression cannot hide a truncation at the end."""
    return Image.frombytes("RGB", size, bytes((i * 7919 + i // 3) % 251 for i in range(size[0] * size[1] * 3)))


def exif_with(*, when="2026:11:24 08:12:30", lat=(29, 4, 48), lng=(120, 3, 0), orientation=None) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "GridPhone"
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = when
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", lat
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", lng
    return exif


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header claims a huge canvas: a decompression bomb to a decoder."""
    data = encode(Image.new("L", (1, 1)), "PNG")
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return data[:8] + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_every_accepted_image_format_decodes_with_its_exif(fmt):
    facts = imaging.inspect_image(encode(noisy(), fmt, exif=exif_with()), max_pixels=MAX_PIXELS)
    assert (facts.width, facts.height) == (256, 192)
    assert facts.captured_at == datetime(2026, 11, 24, 0, 12, 30, tzinfo=UTC)
    assert facts.latitude == pytest.approx(29.08)
    assert facts.longitude == pytest.approx(120.05)


def test_an_image_without_exif_has_no_evidence():
    facts = imaging.inspect_image(encode(noisy(), "PNG"), max_pixels=MAX_PIXELS)
    assert (facts.captured_at, facts.latitude, facts.longitude) == (None, None, None)


def test_a_truncated_jpeg_is_corrupt():
    data = encode(noisy(), "JPEG", quality=95)
    with pytest.raises(Rejection) as caught:
        imaging.inspect_image(data[: len(data) // 2], max_pixels=MAX_PIXELS)
    assert caught.value.reason == "corrupt"


def test_a_damaged_png_is_corrupt():
    data = bytearray(encode(noisy(), "PNG"))
    data[60:80] = b"\x00" * 20  # inside the first IDAT chunk: its CRC no longer matches
    with pytest.raises(Rejection) as caught:
        imaging.inspect_image(bytes(data), max_pixels=MAX_PIXELS)
    assert caught.value.reason == "corrupt"


def test_a_huge_canvas_is_refused_before_decoding():
    with pytest.raises(Rejection) as caught:
        imaging.inspect_image(png_claiming(40_000, 40_000), max_pixels=MAX_PIXELS)
    assert caught.value.reason == "decompression-bomb"
    # Past Pillow's own limit too (it raises DecompressionBombError at twice MAX_IMAGE_PIXELS).
    with pytest.raises(Rejection) as caught:
        imaging.inspect_image(png_claiming(60_000, 60_000), max_pixels=10**12)
    assert caught.value.reason == "decompression-bomb"


def test_the_public_copy_and_thumbnail_carry_no_metadata_and_stand_upright():
    original = encode(noisy((300, 200)), "JPEG", exif=exif_with(orientation=6))  # 6: rotate 90° to view
    public, thumbnail = imaging.derived_copies(original, max_pixels=MAX_PIXELS)
    for derived, bound in ((public, 2048), (thumbnail, 320)):
        image = Image.open(io.BytesIO(derived))
        assert image.format == "JPEG"
        assert dict(image.getexif()) == {}
        assert "exif" not in image.info and "xmp" not in image.info
        assert image.height > image.width and max(image.size) <= bound
    assert imaging.inspect_image(original, max_pixels=MAX_PIXELS).latitude == pytest.approx(29.08)


def test_transparent_pngs_get_a_white_background_in_the_public_copy():
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    public, _ = imaging.derived_copies(encode(image, "PNG"), max_pixels=MAX_PIXELS)
    copy = Image.open(io.BytesIO(public))
    assert copy.getpixel((5, 5)) >= (250, 250, 250)


def test_the_comparison_puts_before_left_and_after_right_at_one_height():
    before = encode(Image.new("RGB", (400, 300), (200, 30, 30)), "JPEG")
    after = encode(Image.new("RGB", (300, 600), (30, 200, 30)), "PNG")
    data = imaging.comparison_image(
        before=before,
        after=after,
        before_caption="拍摄于 2026-11-24 08:12",
        after_caption="上传于 2026-11-25 10:00",
        max_pixels=MAX_PIXELS,
    )
    image = Image.open(io.BytesIO(data)).convert("RGB")
    height = imaging.COMPARISON_HEIGHT
    assert image.height > height
    assert image.width == 24 * 3 + 800 + 300  # 400×300 and 300×600 scaled to 600 high
    left, right = image.getpixel((24 + 400, 72 + height // 2)), image.getpixel((24 * 2 + 800 + 150, 72 + height // 2))
    assert left[0] > 150 and left[1] < 80
    assert right[1] > 150 and right[0] < 80
    # The labels are drawn (dark or coloured pixels in the header band, not just white).
    header = image.crop((0, 0, image.width, 72)).convert("L")
    assert header.getextrema()[0] < 200


def test_capture_time_is_never_the_edit_time_and_zero_gps_is_no_position():
    exif = Image.Exif()
    exif[ExifTags.Base.DateTime] = "2026:11:30 20:00:00"  # when an editor last saved the file
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeDigitized] = "2026:11:24 08:12:30"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.OffsetTimeDigitized] = "+08:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (0, 0, 0)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (0, 0, 0)
    facts = imaging.inspect_image(encode(noisy(), "JPEG", exif=exif), max_pixels=MAX_PIXELS)
    assert facts.captured_at == datetime(2026, 11, 24, 0, 12, 30, tzinfo=UTC)
    assert (facts.latitude, facts.longitude) == (None, None)

    edited_only = Image.Exif()
    edited_only[ExifTags.Base.DateTime] = "2026:11:30 20:00:00"
    assert imaging.inspect_image(encode(noisy(), "JPEG", exif=edited_only), max_pixels=MAX_PIXELS).captured_at is None


def test_the_derived_copies_decode_the_original_once(monkeypatch):
    opened = []
    real_open = imaging._open
    monkeypatch.setattr(imaging, "_open", lambda data, **kw: opened.append(1) or real_open(data, **kw))
    public, thumbnail = imaging.derived_copies(encode(noisy((3000, 2000)), "JPEG"), max_pixels=MAX_PIXELS)
    assert len(opened) == 1  # a 50-megapixel photo costs one decode here, not one per copy
    assert max(Image.open(io.BytesIO(thumbnail)).size) < max(Image.open(io.BytesIO(public)).size)


def scene(seed: int, size=(640, 480)) -> Image.Image:
    """A picture with structure (shapes of different brightness), different for each seed."""
    image = Image.new("RGB", size, (90 + seed * 7 % 60, 100, 110))
    draw = ImageDraw.Draw(image)
    for i in range(12):
        x, y = (seed * 131 + i * 97) % size[0], (seed * 71 + i * 53) % size[1]
        shade = (seed * 37 + i * 61) % 256
        draw.rectangle((x, y, x + 60 + i * 9, y + 40 + i * 7), fill=(shade, 255 - shade, (shade * 3) % 256))
    return image


def hash_of(data: bytes) -> int | None:
    return imaging.inspect_image(data, max_pixels=50_000_000).dhash


def test_a_photo_resized_and_recompressed_keeps_its_perceptual_hash_and_another_does_not():
    original = scene(1)
    first = hash_of(encode(original, "JPEG", quality=95))
    assert first is not None and 0 <= first < 2**64
    # The same picture as a messaging app sends it on: smaller, recompressed, as PNG, or its EXIF
    # saying it is rotated and the pixels rotated to match (the upright picture is what is hashed).
    smaller = hash_of(encode(original.resize((320, 240)), "JPEG", quality=60))
    as_png = hash_of(encode(original, "PNG"))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # rotate 90° clockwise to view
    rotated = hash_of(encode(original.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif))
    for copy in (smaller, as_png, rotated):
        assert copy is not None and domain.hamming(first, copy) <= 6
    # Other pictures are far away.
    for seed in (2, 3, 4):
        other = hash_of(encode(scene(seed), "JPEG", quality=95))
        assert other is not None and domain.hamming(first, other) > 12


def test_a_featureless_picture_has_no_hash_to_compare():
    assert hash_of(encode(Image.new("RGB", (64, 64), (30, 160, 60)), "JPEG")) is None
    assert domain.informative_hash(0) is None and domain.informative_hash(2**64 - 1) is None
    assert domain.informative_hash(0b1111) == 0b1111


def test_hashes_are_compared_bit_by_bit_and_kept_as_postgres_bigints():
    assert domain.hamming(0, 0) == 0 and domain.hamming(0b1011, 0b0001) == 2
    assert domain.hamming(2**64 - 1, 0) == 64
    assert domain.signed64(2**64 - 1) == -1 and domain.signed64(2**63) == -(2**63) and domain.signed64(5) == 5
    # XOR of the stored (signed) values has the same differing bits as of the unsigned hashes.
    a, b = 2**63 + 12345, 987654321
    assert domain.hamming(domain.signed64(a), domain.signed64(b)) == domain.hamming(a, b)
