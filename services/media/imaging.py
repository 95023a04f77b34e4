"""Pillow work on image bytes, in memory: full decoding with a decompression-bomb limit, EXIF
evidence, the stripped public copy, the thumbnail and the before/after comparison image.

Everything here is CPU-bound and blocking: callers run it in a worker thread."""

import io
import warnings
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import pillow_heif
from PIL import ExifTags, Image, ImageDraw, ImageFont, ImageOps

from services.media.domain import Rejection, check_pixels, gps_degrees, informative_hash, parse_exif_datetime

pillow_heif.register_heif_opener()

# A subset of Droid Sans Fallback (Apache-2.0) holding only the Chinese glyphs the captions use: no
# CJK font is installed on servers by default. See fonts/NOTICE for the character list.
FONT_PATH = Path(__file__).parent / "fonts" / "labels-zh.ttf"

THUMBNAIL_SIZE = (320, 320)
PUBLIC_MAX_SIDE = 2048
COMPARISON_HEIGHT = 600
JPEG_QUALITY = 85


@dataclass(frozen=True)
class ImageFacts:
    """What decoding an image established, and the evidence its EXIF carries."""

    width: int
    height: int
    captured_at: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    dhash: int | None = None  # perceptual hash (photo_hash), None for a featureless picture


def _open(data: bytes, *, max_pixels: int) -> Image.Image:
    """Open (header only) and refuse oversized canvases before any pixel is decoded."""
    with warnings.catch_warnings():
        # Pillow's own bomb check warns at its limit; ours is stricter and checked right below.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise Rejection("decompression-bomb", f"图片像素过多：{exc}") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise Rejection("corrupt", "无法识别的图片数据。") from exc
    check_pixels(width=image.width, height=image.height, max_pixels=max_pixels)
    return image


def inspect_image(data: bytes, *, max_pixels: int) -> ImageFacts:
    """Decode the whole image (a truncated or damaged file fails here) and read its EXIF."""
    image = _open(data, max_pixels=max_pixels)
    try:
        image.verify()  # structure and checksums (PNG CRCs); the image must be reopened after
        image = _open(data, max_pixels=max_pixels)
        image.load()
    except Rejection:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Rejection("corrupt", "图片无法完整解码，文件可能已损坏或未传完整。") from exc
    return ImageFacts(image.width, image.height, *_exif_evidence(image), dhash=photo_hash(image))


def photo_hash(image: Image.Image) -> int | None:
    """64-bit difference hash (dHash): the upright picture in grey at 9×8, one bit per pair of
    horizontal neighbours (is the left one brighter). Resizing, recompression and small edits move
    few bits, so a reused photo is found by Hamming distance, not by its bytes."""
    grey = ImageOps.exif_transpose(image).convert("L")
    small = grey.resize((9, 8), Image.Resampling.LANCZOS, reducing_gap=2.0).tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (small[row * 9 + col] > small[row * 9 + col + 1])
    return informative_hash(bits)


def _exif_evidence(image: Image.Image) -> tuple[datetime | None, float | None, float | None]:
    """Capture time and GPS position; malformed EXIF means no evidence, not a broken upload."""
    try:
        exif = image.getexif()
        details = exif.get_ifd(ExifTags.IFD.Exif)
        # Not IFD0's DateTime: editing software rewrites it, so it says when the file changed.
        captured_at = parse_exif_datetime(
            details.get(ExifTags.Base.DateTimeOriginal), details.get(ExifTags.Base.OffsetTimeOriginal)
        ) or parse_exif_datetime(
            details.get(ExifTags.Base.DateTimeDigitized), details.get(ExifTags.Base.OffsetTimeDigitized)
        )
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        latitude = longitude = None
        if ExifTags.GPS.GPSLatitude in gps and ExifTags.GPS.GPSLongitude in gps:
            latitude = gps_degrees(gps[ExifTags.GPS.GPSLatitude], gps.get(ExifTags.GPS.GPSLatitudeRef))
            longitude = gps_degrees(gps[ExifTags.GPS.GPSLongitude], gps.get(ExifTags.GPS.GPSLongitudeRef))
            if latitude is None or longitude is None or not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
                latitude = longitude = None
            elif latitude == 0 and longitude == 0:  # what some phones write without a GPS fix
                latitude = longitude = None
        return captured_at, latitude, longitude
    except Exception:  # noqa: BLE001 — EXIF from the wild is often malformed in creative ways
        return None, None, None


def _clean_rgb(data: bytes, *, max_pixels: int) -> Image.Image:
    """The decoded pixels, upright, in RGB, with every piece of metadata dropped."""
    image = ImageOps.exif_transpose(_open(data, max_pixels=max_pixels))
    if image.mode in ("RGBA", "LA", "P"):
        # Transparent areas become white rather than black in the JPEG.
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    image = image.convert("RGB")
    image.info = {}  # convert() copies EXIF, XMP and comments along; the public copy carries none
    return image


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def derived_copies(data: bytes, *, max_pixels: int) -> tuple[bytes, bytes]:
    """(public copy, thumbnail): JPEGs without EXIF (no GPS, no device), upright, for pages and
    lists; the original stays as is. The image is decoded once for both."""
    image = _clean_rgb(data, max_pixels=max_pixels)
    image.thumbnail((PUBLIC_MAX_SIDE, PUBLIC_MAX_SIDE))
    public = _jpeg(image)
    image.thumbnail(THUMBNAIL_SIZE)  # from the already reduced pixels
    return public, _jpeg(image)


@cache
def _font(size: int, cjk: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # The CJK subset has no Latin glyphs; Pillow's built-in font (Aileron) draws digits and Latin.
    return ImageFont.truetype(str(FONT_PATH), size) if cjk else ImageFont.load_default(size)


def _draw_centred(draw: ImageDraw.ImageDraw, centre: tuple[float, float], text: str, *, size: int, fill) -> None:
    """Draw mixed Chinese/Latin text centred on a point, each run in a font that has its glyphs."""
    runs: list[tuple[str, bool]] = []
    for char in text:
        cjk = ord(char) > 0x7F
        if runs and runs[-1][1] == cjk:
            runs[-1] = (runs[-1][0] + char, cjk)
        else:
            runs.append((char, cjk))
    x = centre[0] - sum(_font(size, cjk).getlength(run) for run, cjk in runs) / 2
    for run, cjk in runs:
        draw.text((x, centre[1]), run, font=_font(size, cjk), fill=fill, anchor="lm")
        x += _font(size, cjk).getlength(run)


def comparison_image(*, before: bytes, after: bytes, before_caption: str, after_caption: str, max_pixels: int) -> bytes:
    """整改前后对比: the two photos side by side at one height, labelled above and captioned below."""
    photos = []
    for data in (before, after):
        image = _clean_rgb(data, max_pixels=max_pixels)
        width = max(1, round(image.width * COMPARISON_HEIGHT / image.height))
        photos.append(image.resize((width, COMPARISON_HEIGHT)))
    margin, header, footer = 24, 72, 56
    canvas = Image.new(
        "RGB", (sum(p.width for p in photos) + 3 * margin, header + COMPARISON_HEIGHT + footer), (255, 255, 255)
    )
    draw = ImageDraw.Draw(canvas)
    x = margin
    for photo, label, line, colour in (
        (photos[0], "整改前", before_caption, (192, 57, 43)),
        (photos[1], "整改后", after_caption, (39, 174, 96)),
    ):
        canvas.paste(photo, (x, header))
        _draw_centred(draw, (x + photo.width / 2, header / 2), label, size=40, fill=colour)
        _draw_centred(
            draw, (x + photo.width / 2, header + COMPARISON_HEIGHT + footer / 2), line, size=24, fill=(60, 60, 60)
        )
        x += photo.width + margin
    return _jpeg(canvas)
