"""A moto server whose CompleteMultipartUpload joins the parts on disk, for bench/memory.py.

    python bench/moto_disk.py -H 127.0.0.1 -p PORT

moto 5 joins a multipart upload's parts in memory: the parts into one bytearray,
then a bytes copy of it, and for a FULL_OBJECT checksum a third copy. The 1 GB
input's output is 4.5 GB of JSON Lines, so the emulator needs ~15 GB and answers
500 (the run on 2026-11-23: 17.7 GB peak, then "Internal Server Error"). Here the
parts are copied one at a time into a temporary file that becomes the object's
storage (moto keeps large objects in temporary files anyway), so the emulator
fits the machine. What the handler sends and receives is unchanged: same API,
same ETag ("<md5 of the part md5s>-<count>"), same size. Only this bench uses it;
the tests and `pipectl dev` run stock moto.
"""

from __future__ import annotations

import codecs
import shutil
import tempfile

from moto.s3 import models
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.server import main
from moto.utilities.utils import md5_hash


class _Joined:
    """The joined object: a temporary file and its size, adopted by FakeKey's value setter."""

    def __init__(self, file, size: int):
        self.file, self.size = file, size


def _complete(self, body):
    decode_hex = codecs.getdecoder("hex_codec")
    checksums = models.MultipartChecksumBuilder(self.metadata.get("x-amz-checksum-algorithm"),
                                                self.metadata.get("x-amz-checksum-type"))
    joined = tempfile.TemporaryFile()
    md5s, size, count, last = bytearray(), 0, 0, None
    for number, etag in body:
        part = self.parts.get(number)
        if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
            raise InvalidPart()
        if last is not None and last.contentsize < models.S3_UPLOAD_PART_MIN_SIZE:
            raise EntityTooSmall()
        md5s.extend(decode_hex(part.etag.replace('"', ""))[0])
        with part.lock:
            part._value_buffer.seek(0)
            shutil.copyfileobj(part._value_buffer, joined, 16 * 2 ** 20)
        if checksums.checksum_type == "COMPOSITE":      # per part: no whole-object copy
            checksums.addPart(part.value)
        size += part.contentsize
        last, count = part, count + 1
    if count == 0:
        raise MalformedXML
    full_etag = md5_hash()
    full_etag.update(bytes(md5s))
    details = checksums.build() if checksums.checksum_type == "COMPOSITE" else None
    return _Joined(joined, size), f"{full_etag.hexdigest()}-{count}", details


_set_value = models.FakeKey.value.fset


def _value(self, new_value) -> None:
    if isinstance(new_value, _Joined):
        self._value_buffer.close()
        self._value_buffer = new_value.file
        self.contentsize = new_value.size
        return
    _set_value(self, new_value)


models.FakeMultipart.complete = _complete
models.FakeKey.value = models.FakeKey.value.setter(_value)

if __name__ == "__main__":
    main()
