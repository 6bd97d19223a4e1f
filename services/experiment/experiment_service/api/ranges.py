"""HTTP range requests and conditionals for artifact downloads (RFC 9110 §13, §14)."""

import urllib.parse
from dataclasses import dataclass

from backend_common.errors import ProblemError

# One range of a representation: bytes start to stop, stop excluded.


@dataclass(frozen=True)
class ByteRange:
    start: int
    stop: int

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{size}"


def entity_tag(sha256: str) -> str:
    return f'"{sha256}"'


def none_match(header: str | None, tag: str) -> bool:
    """If-None-Match names the tag (weak comparison) or is `*`: the client has it."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(candidate.strip().removeprefix("W/") == tag for candidate in header.split(","))


def range_applies(if_range: str | None, tag: str) -> bool:
    """Without If-Range a Range applies; with it, only while the entity tag is still the one
    the client names (strong comparison: a weak tag or a date never matches)."""
    return if_range is None or if_range.strip() == tag


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The one range of `size` bytes the Range header asks for, or None for the whole content:
    no header, a unit other than bytes, a malformed header (ignored, as RFC 9110 allows), or
    several ranges (answered whole rather than as multipart/byteranges). 416 when no range asked
    for overlaps the content."""
    if header is None:
        return None
    unit, equals, specs = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    ranges: list[ByteRange | None] = []  # None: a valid range that does not overlap
    for spec in specs.split(","):
        first_text, dash, last_text = spec.partition("-")
        if not dash:
            return None
        if first_text.strip():
            first = _number(first_text)
            last = _number(last_text) if last_text.strip() else first
            if first is None or last is None or last < first:
                return None
            if not last_text.strip():
                last = size - 1  # to the end
            ranges.append(ByteRange(first, min(last, size - 1) + 1) if first < size else None)
        else:
            suffix = _number(last_text)
            if suffix is None:
                return None
            ranges.append(ByteRange(max(size - suffix, 0), size) if suffix and size else None)
    if not ranges:
        return None
    if all(byte_range is None for byte_range in ranges):
        raise ProblemError(
            416,
            "range_not_satisfiable",
            f"No range asked for overlaps the artifact's {size} bytes.",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return ranges[0] if len(ranges) == 1 else None


def attachment(name: str) -> str:
    """Content-Disposition for a download under the last segment of the artifact's name: an
    ASCII fallback without quotes or separators, and the name itself in RFC 8187 form."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base in ("", ".", ".."):
        base = "artifact"
    base = base[:200]
    fallback = "".join(char if " " <= char <= "~" and char not in '"\\;%' else "_" for char in base)
    encoded = urllib.parse.quote(base, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
