import pytest

from services.media.domain import object_key, sniff_content_type


@pytest.mark.parametrize("head,expected", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00", "image/heic"),
    (b"\x00\x00\x00\x18ftypisom\x00\x00", "video/mp4"),
    (b"#!AMR\n", "audio/amr"),
    (b"ID3\x04\x00", "audio/mpeg"),
    (b"%PDF-1.7", None),
    (b"GIF89a", None),
    (b"", None),
])
def test_type_is_judged_by_content(head, expected):
    assert sniff_content_type(head) == expected


def test_objects_are_addressed_by_hash():
    assert object_key("ab" + "0" * 62) == "sha256/ab/ab" + "0" * 62
