"""Media decodes at most `media_decode_concurrency` images at once per process: several 50 MP
uploads arriving together wait their turn instead of each holding ~150 MB of pixels at once."""

import asyncio
import io
import threading
import time

import pytest
from PIL import Image

from services.media import imaging
from services.media.domain import Rejection
from services.media.settings import MediaSettings
from services.media.workflow import decoding


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, "JPEG")
    return out.getvalue()


class Tracked:
    """Real Pillow work that records how many calls run at the same moment."""

    def __init__(self):
        self.lock, self.running, self.peak = threading.Lock(), 0, 0

    def __call__(self, data: bytes, *, max_pixels: int) -> imaging.ImageFacts:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.05)  # long enough for every waiting call to have been started by now
            return imaging.inspect_image(data, max_pixels=max_pixels)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_no_more_images_are_decoded_at_once_than_the_limit(limit):
    settings = MediaSettings(media_decode_concurrency=limit)
    work, data = Tracked(), jpeg(640, 480)
    facts = await asyncio.gather(*(decoding(settings, work, data, max_pixels=50_000_000) for _ in range(8)))
    assert all((f.width, f.height) == (640, 480) for f in facts)  # every one decoded, none dropped
    assert work.peak == limit  # the thread pool (5+ workers) would have allowed more


async def test_a_failed_decode_gives_its_slot_back():
    settings = MediaSettings(media_decode_concurrency=1)
    with pytest.raises(Rejection, match="corrupt"):
        await decoding(settings, imaging.inspect_image, b"not an image", max_pixels=50_000_000)
    facts = await asyncio.wait_for(decoding(settings, imaging.inspect_image, jpeg(8, 8), max_pixels=100), 5)
    assert (facts.width, facts.height) == (8, 8)


def test_the_limit_is_at_least_one():
    with pytest.raises(ValueError):
        MediaSettings(media_decode_concurrency=0)
