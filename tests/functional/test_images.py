"""Images (handlers/processing/images.py): metadata, thumbnails, limits; through the processor."""

from __future__ import annotations

import io
import json

import pytest
from common import results
from PIL import Image
from processing import images


def encode(image: Image.Image, fmt: str, **save) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def rotated_jpeg(width: int = 800, height: int = 400, orientation: int = 6) -> bytes:
    image = Image.new("RGB", (width, height), "navy")
    exif = image.getexif()
    exif[images.EXIF_ORIENTATION] = orientation
    return encode(image, "JPEG", exif=exif)


def test_metadata_and_a_thumbnail_that_honours_the_exif_orientation():
    data = rotated_jpeg()
    metadata, thumb = images.process(io.BytesIO(data), "incoming/cat.jpg")

    assert metadata == {"format": "JPEG", "width": 800, "height": 400, "mode": "RGB",
                        "size_bytes": len(data), "exif_orientation": 6, "frames": 1}
    # Orientation 6 turns the 800x400 picture upright to 400x800; 256 wide keeps the aspect.
    assert (thumb.width, thumb.height, thumb.extension) == (256, 512, ".jpg")
    with Image.open(io.BytesIO(thumb.data)) as written:
        assert (written.format, written.size) == ("JPEG", (256, 512))


@pytest.mark.parametrize("fmt, suffix, mode", [("PNG", ".png", "RGBA"), ("GIF", ".gif", "P"),
                                               ("WEBP", ".webp", "RGB")])
def test_other_formats_keep_their_format_and_small_images_are_not_enlarged(fmt, suffix, mode):
    data = encode(Image.new(mode, (1000, 250)), fmt)
    metadata, thumb = images.process(io.BytesIO(data), f"a{suffix}",
                                     images.ImageLimits(thumbnail_width=100))
    assert (metadata["format"], metadata["width"], metadata["height"]) == (fmt, 1000, 250)
    assert metadata["exif_orientation"] is None
    with Image.open(io.BytesIO(thumb.data)) as written:
        assert (written.format, written.size) == (fmt, (100, 25))

    small = encode(Image.new(mode, (40, 30)), fmt)
    assert images.process(io.BytesIO(small), f"a{suffix}")[1].width == 40


@pytest.mark.parametrize("pixels", [3000 * 3000, 1500 * 1500])
def test_decompression_bombs_are_refused(pixels):
    # 9 Mpx: past twice the limit Pillow raises; 2.25 Mpx, between 1x and 2x, it only
    # warns, which is a refusal too.
    side = int(pixels ** 0.5)
    data = encode(Image.new("L", (side, side)), "PNG")     # a few KiB on disk
    with pytest.raises(images.ImageError, match=r"refused as a decompression bomb: more than "
                       r"2000000 pixels .*Image size \(\d+ pixels\)"):
        images.process(io.BytesIO(data), "bomb.png", images.ImageLimits(max_pixels=2_000_000))


def test_an_image_larger_than_the_byte_limit_is_refused_without_reading_it_whole():
    class Endless(io.RawIOBase):
        def __init__(self):
            self.read_bytes = 0

        def read(self, n=-1):
            self.read_bytes += n
            return b"\xff" * n

    body = Endless()
    with pytest.raises(images.ImageError, match="larger than 1000000 bytes"):
        images.process(body, "huge.jpg", images.ImageLimits(max_bytes=1_000_000))
    assert body.read_bytes <= 1_000_001
    with pytest.raises(images.ImageError, match="the image is 5000000 bytes; at most 1000000"):
        images.process(Endless(), "huge.jpg", images.ImageLimits(max_bytes=1_000_000),
                       size=5_000_000)


def test_a_damaged_image_is_a_clear_error():
    with pytest.raises(images.ImageError, match="not an image Pillow can read"):
        images.process(io.BytesIO(b"this is not a png"), "x.png")
    with pytest.raises(images.ImageError, match="cannot be decoded"):
        images.process(io.BytesIO(rotated_jpeg()[:600]), "x.jpg")


def test_limits_come_from_the_environment():
    limits = images.ImageLimits.from_env({"THUMBNAIL_WIDTH": "64", "MAX_IMAGE_PIXELS": "100"})
    assert (limits.thumbnail_width, limits.max_pixels) == (64, 100)
    with pytest.raises(ValueError, match="MAX_IMAGE_BYTES='-1'"):
        images.ImageLimits.from_env({"MAX_IMAGE_BYTES": "-1"})
    assert json.dumps(images.ImageLimits().__dict__)


# --- through the processor ----------------------------------------------------------

def test_an_uploaded_image_gets_a_metadata_line_and_a_thumbnail(aws_world, monkeypatch):
    import processor

    monkeypatch.setenv("THUMBNAIL_WIDTH", "100")
    w = aws_world
    data = rotated_jpeg()
    w.upload("incoming/pets/cat.JPG", data)
    assert processor.lambda_handler(w.event(w.message("incoming/pets/cat.JPG")), None) == {
        "batchItemFailures": []}

    row = w.row("incoming/pets/cat.JPG")
    assert (row["status"], row["kind"], row["records_in"], row["records_out"]) == (
        "PROCESSED", "image", 1, 1)
    (output,) = w.keys("processed-bucket", "processed/")
    (thumb,) = w.keys("processed-bucket", "thumbnails/")
    # thumbnails/<day>/<the source's own name>, beside processed/<day>/<name>.jsonl
    assert output.endswith("/pets/cat.JPG.jsonl")
    assert thumb == "thumbnails/" + output.removeprefix("processed/")[:-len(".jsonl")]
    assert row["thumbnail"] == f"s3://processed-bucket/{thumb}"
    line = json.loads(w.read("processed-bucket", output))
    assert {k: line[k] for k in ("format", "width", "height", "mode", "size_bytes",
                                 "exif_orientation", "thumbnail_width", "thumbnail_height")} \
        == {"format": "JPEG", "width": 800, "height": 400, "mode": "RGB",
            "size_bytes": len(data), "exif_orientation": 6, "thumbnail_width": 100,
            "thumbnail_height": 200}
    with Image.open(io.BytesIO(w.s3.get_object(Bucket="processed-bucket", Key=thumb)["Body"]
                               .read())) as written:
        assert written.size == (100, 200)
    assert w.keys("raw-bucket", "completed/") == ["completed/pets/cat.JPG"]
    assert w.row(results.COUNTERS_KEY)["thumbnails"] == 1


def test_a_decompression_bomb_upload_fails_permanently(aws_world, monkeypatch):
    import processor

    monkeypatch.setenv("MAX_IMAGE_PIXELS", "1000000")
    w = aws_world
    w.upload("incoming/bomb.png", encode(Image.new("1", (4000, 4000)), "PNG"))
    assert processor.lambda_handler(w.event(w.message("incoming/bomb.png")), None) == {
        "batchItemFailures": []}                        # permanent: not retried

    row = w.row("incoming/bomb.png")
    assert row["status"] == "FAILED"
    assert row["error"].startswith("refused as a decompression bomb: more than 1000000 pixels")
    assert w.keys("raw-bucket", "failed/") == ["failed/bomb.png"]
    assert w.keys("processed-bucket") == []
