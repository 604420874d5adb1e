"""Images: metadata as one JSON result line, and a thumbnail, with Pillow.

The file is read into memory only up to MAX_IMAGE_BYTES (a larger one is a
permanent failure, found before or while reading, never by reading it whole), and
decoded only if its pixel count is at most MAX_IMAGE_PIXELS: Pillow's
decompression bomb check is set to that limit and its warning made an error, so
a small file that claims a huge canvas is refused before it is decoded.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

from common import contract
from PIL import Image, ImageOps, UnidentifiedImageError

SUFFIXES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".gif": "GIF", ".webp": "WEBP"}
EXIF_ORIENTATION = 0x0112
READ_CHUNK = 1 << 20
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif",
                 "WEBP": "image/webp"}


class ImageError(Exception):
    """The image can never be processed as it is (the processor makes it a FAILED row)."""


@dataclass(frozen=True)
class ImageLimits:
    thumbnail_width: int = 256
    max_pixels: int = 40_000_000
    max_bytes: int = 20 * 1024 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ImageLimits:
        values = {}
        for name, attr in ((contract.THUMBNAIL_WIDTH, "thumbnail_width"),
                           (contract.MAX_IMAGE_PIXELS, "max_pixels"),
                           (contract.MAX_IMAGE_BYTES, "max_bytes")):
            raw = (environ.get(name) or "").strip()
            if raw:
                value = int(raw) if raw.isdigit() else 0
                if value <= 0:
                    raise ValueError(f"{name}={raw!r}: expected a positive whole number")
                values[attr] = value
        return cls(**values)


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    width: int
    height: int
    extension: str          # the source's own: .jpg stays .jpg
    content_type: str


def is_image(key: str) -> bool:
    dot = key.rfind(".")
    return dot >= 0 and key[dot:].lower() in SUFFIXES


def read_limited(body, max_bytes: int, size: int | None = None) -> bytes:
    """At most max_bytes of a stream; ImageError (not MemoryError) past the limit."""
    if size is not None and size > max_bytes:
        raise ImageError(f"the image is {size} bytes; at most {max_bytes} are read "
                         "(images.max_bytes, MAX_IMAGE_BYTES)")
    buffer = bytearray()
    while True:
        chunk = body.read(min(READ_CHUNK, max_bytes + 1 - len(buffer)))
        if not chunk:
            return bytes(buffer)
        buffer += chunk
        if len(buffer) > max_bytes:
            raise ImageError(f"the image is larger than {max_bytes} bytes "
                             "(images.max_bytes, MAX_IMAGE_BYTES)")


def process(body, key: str, limits: ImageLimits = ImageLimits(),
            size: int | None = None) -> tuple[dict, Thumbnail]:
    """(metadata record, thumbnail) for one image stream."""
    data = read_limited(body, limits.max_bytes, size)
    # Process-wide in Pillow; set on every call (a worker runs one invocation at a time).
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    with warnings.catch_warnings():
        # Between the limit and twice it Pillow only warns; here that is a refusal too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                return _describe(image, data, key, limits)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ImageError(f"refused as a decompression bomb: more than {limits.max_pixels} "
                             f"pixels (images.max_pixels, MAX_IMAGE_PIXELS); {e}") from None
        except UnidentifiedImageError:
            raise ImageError("not an image Pillow can read (or a damaged one)") from None
        except (OSError, SyntaxError, ValueError) as e:
            # Truncated or corrupt data: Pillow raises these while decoding.
            raise ImageError(f"the image cannot be decoded: {e}") from None


def _describe(image: Image.Image, data: bytes, key: str,
              limits: ImageLimits) -> tuple[dict, Thumbnail]:
    fmt = image.format or ""
    width, height = image.size
    if width * height > limits.max_pixels:      # formats Pillow does not check on open
        raise ImageError(f"refused as a decompression bomb: {width}x{height} pixels, more "
                         f"than {limits.max_pixels} (images.max_pixels, MAX_IMAGE_PIXELS)")
    orientation = image.getexif().get(EXIF_ORIENTATION)
    metadata = {"format": fmt, "width": width, "height": height, "mode": image.mode,
                "size_bytes": len(data), "exif_orientation": orientation,
                "frames": getattr(image, "n_frames", 1)}
    return metadata, _thumbnail(image, key, limits.thumbnail_width)


def _thumbnail(image: Image.Image, key: str, width: int) -> Thumbnail:
    fmt = SUFFIXES.get(key[key.rfind("."):].lower(), image.format or "PNG")
    if fmt == "JPEG":
        # Decode at a reduced scale where JPEG allows it (far less memory for big photos),
        # keeping both sides at least `width`: the EXIF orientation may swap them.
        image.draft("RGB", (width, width))
    upright = ImageOps.exif_transpose(image)     # honour the EXIF orientation
    w, h = upright.size
    if w > width:                                # keep the aspect ratio; never enlarge
        upright = upright.resize((width, max(1, round(h * width / w))), Image.Resampling.LANCZOS)
    if fmt == "JPEG" and upright.mode not in ("RGB", "L"):
        upright = upright.convert("RGB")
    out = io.BytesIO()
    upright.save(out, format=fmt)
    return Thumbnail(data=out.getvalue(), width=upright.size[0], height=upright.size[1],
                     extension=key[key.rfind("."):].lower(), content_type=CONTENT_TYPES[fmt])
