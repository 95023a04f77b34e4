"""A self-hosted image CAPTCHA for 我要查询: a small sum drawn by Pillow on the server.

No third-party service (the county intranet may be offline). An arithmetic challenge is easy for
residents of any age on any phone, and the digits are drawn with jitter and noise so a script must
read the picture, which is enough to stop the cheap abuse it is here for (texting strangers).
"""

import base64
import io
import secrets

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 160, 60


def new_challenge() -> tuple[str, str]:
    """(the text to draw, the answer): a sum of two small numbers, e.g. ("7 + 15 = ?", "22")."""
    a, b = 1 + secrets.randbelow(20), 1 + secrets.randbelow(9)
    return f"{a} + {b} = ?", str(a + b)


def render_png(text: str) -> bytes:
    """The challenge as a PNG: dark, large glyphs (readable) on a light ground with noise lines."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (246, 248, 250))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=30)
    for _ in range(6):
        draw.line(
            [
                (secrets.randbelow(WIDTH), secrets.randbelow(HEIGHT)),
                (secrets.randbelow(WIDTH), secrets.randbelow(HEIGHT)),
            ],
            fill=(150 + secrets.randbelow(80), 150 + secrets.randbelow(80), 150 + secrets.randbelow(80)),
            width=2,
        )
    x = 8
    for char in text:
        y = 10 + secrets.randbelow(10)
        draw.text((x, y), char, font=font, fill=(20 + secrets.randbelow(60), 30, 60 + secrets.randbelow(60)))
        x += int(draw.textlength(char, font=font)) + 1
    for _ in range(120):
        draw.point((secrets.randbelow(WIDTH), secrets.randbelow(HEIGHT)), fill=(120, 120, 120))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def data_url(png: bytes) -> str:
    """The PNG inline for an <img src>, so the page needs no second request."""
    return "data:image/png;base64," + base64.b64encode(png).decode()
