"""Pure media rules: what a file is, judged by its bytes, and where it is stored."""

# (content type, test on the first bytes). Order matters: the ISO-BMFF brands share 'ftyp'.
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"}


def sniff_content_type(head: bytes) -> str | None:
    """The media type by magic bytes, or None when it is not an accepted kind."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "image/heic" if head[8:12] in _HEIC_BRANDS else "video/mp4"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def object_key(sha256_hex: str) -> str:
    """Objects are stored once under their content hash."""
    return f"sha256/{sha256_hex[:2]}/{sha256_hex}"
