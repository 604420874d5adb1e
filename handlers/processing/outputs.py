"""One source file's outputs: its records (JSON Lines or Parquet), the rejects file and
the sink's items, or an image's record and thumbnail; each verified as it is closed.

The processor's attempt decides whether and where to write (processor.py); this module
writes, and on any error aborts what it started, so no half output is left visible.
"""

from __future__ import annotations

import json
from typing import Any, cast

from common import storage, user_metadata
from common.clients import dynamodb_client

from processing import images, schema, sink
from processing.limits import Limits, PermanentError
from processing.output_format import Encoding
from processing.settings import Settings
from processing.transform import Counts, process_stream

REJECTS_PREFIX, THUMBNAILS_PREFIX = "rejects/", "thumbnails/"   # in the processed bucket


class Rejected(PermanentError):
    """Too many records failed the schema; `fields` go on the FAILED row."""

    def __init__(self, message: str, fields: dict):
        super().__init__(message)
        self.fields = fields


class _Discard:
    etag: str | None = None

    def write(self, data: bytes) -> None:
        pass

    close = abort = lambda self: None


def write_output(s3, s: Settings, output_key: str, source, kind: str, metadata: dict,
                  limits: Limits, compressed: bool, object_metadata: dict, *, key: str,
                  write: bool = True, replaces: dict | None = None) -> tuple:
    """Stream the output (and rejects, sink items); (Counts, extra row fields).

    write=False (the output exists already) counts only: nothing is written again.
    replaces: the row of the output this one replaces (a re-run), whose sink items and
    rejects file this run's do not leave behind.
    """
    if kind == "image":
        return _write_image(s3, s, output_key, source, metadata, object_metadata, key, write)
    # Rejects stay JSON Lines whatever the output's format: they are for people to read.
    rejects_key = REJECTS_PREFIX + output_key[len(s.processed):-len(s.output.extension)] + ".jsonl"
    found = schema.schema_for(key, list(s.schemas)) if kind != "text" else None
    validator = schema.Validator(found, strings=kind == "csv") if found else None
    record_sink = (sink.RecordSink(dynamodb_client(), s.sink_table, s.sink_key or None)
                   if s.sink_table and kind != "text" and write else None)
    screen = schema.Screen(validator, lambda: storage.ObjectWriter(
        s3, s.processed_bucket, rejects_key, metadata=object_metadata) if write else _Discard(),
        record_sink, metadata)
    writer = (storage.ObjectWriter(s3, s.processed_bucket, output_key, metadata=object_metadata,
                                   content_type=s.output.content_type) if write else _Discard())
    encoding = Encoding(s.output, declared=found.fields if found else None,
                        strings=kind == "csv", reject=screen.reject)
    try:
        try:
            counts = process_stream(kind, source.body, writer.write, metadata, limits, compressed,
                                    accept=screen.accept if screen.active else None,
                                    records=encoding.records)
            encoding.finish()
        except sink.PermanentRecordError as e:
            raise PermanentError(str(e)) from None
        screen.finish()
        old = storage.open_object(s3, s.processed_bucket, output_key) \
            if replaces is not None and record_sink is not None else None
        if old and record_sink is not None:
            # A re-run: the old output's items that this one did not write again go.
            with old.body:
                lines = cast(Any, old.body).iter_lines()    # botocore's StreamingBody
                record_sink.remove_stale(record_sink.keys_of(lines))
        extra: dict[str, Any] = {}
        if validator is not None or screen.rejected:
            extra["records_rejected"] = screen.rejected
            if screen.rejected:
                extra["rejects"] = f"s3://{s.processed_bucket}/{rejects_key}"
            failed = (schema.too_many_rejected(found, screen.rejected, screen.seen)
                      if found else None)     # a type misfit without a schema: no ratio
            if failed:
                raise Rejected(failed + (f"; the rejects: {extra['rejects']}"
                                         if write else ""), extra)
        if record_sink is not None:
            extra["sink_items"] = record_sink.items_written
            if replaces is not None:
                extra["sink_items_removed"] = record_sink.items_removed
        writer.close()
        if write:  # what `pipectl reconcile` checks the output against
            extra["output_etag"] = writer.etag
        if replaces is not None and replaces.get("rejects") and "rejects" not in extra:
            # The old version's rejects; this one rejected nothing.
            s3.delete_object(Bucket=s.processed_bucket, Key=rejects_key)
        for name in ("rejects", "records_rejected", "sink_items", "sink_items_removed"):
            if replaces is not None and replaces.get(name) is not None and name not in extra:
                extra[name] = None      # the row forgets what only the old output had
    except BaseException:
        for w in (writer, screen):
            try:
                w.abort()
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
        raise
    return counts, extra


def _write_image(s3, s: Settings, output_key: str, source, metadata: dict,
                 object_metadata: dict, key: str, write: bool) -> tuple:
    try:
        found, thumb = images.process(source.body, key, s.image_limits, size=source.size)
    except images.ImageError as e:
        raise PermanentError(str(e)) from None
    # thumbnails/<day>/<the source's own name>: its extension is the source's already.
    thumb_key = THUMBNAILS_PREFIX + output_key[len(s.processed):-len(s.output.extension)]
    thumb_uri = f"s3://{s.processed_bucket}/{thumb_key}"
    record = dict(found, thumbnail=thumb_uri, thumbnail_width=thumb.width,
                  thumbnail_height=thumb.height, _metadata=metadata)
    if write:
        # Thumbnail first: the output line names it, and the output is what marks success.
        s3.put_object(Bucket=s.processed_bucket, Key=thumb_key, Body=thumb.data,
                      ContentType=thumb.content_type,
                      Metadata=user_metadata.encode_all(object_metadata))
        writer = storage.ObjectWriter(s3, s.processed_bucket, output_key,
                                      metadata=object_metadata, content_type=s.output.content_type)
        if s.output.format == "jsonl":
            writer.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        else:
            encoding = Encoding(s.output)
            out = encoding.records(writer.write, metadata, Counts(), 1)
            out.add({k: v for k, v in record.items() if k != "_metadata"})
            out.flush()
            encoding.finish()
        writer.close()
    extra = {"image_format": found["format"], "width": found["width"],
             "height": found["height"], "thumbnail": thumb_uri}
    if write:
        extra["output_etag"] = writer.etag
    return Counts(records_in=1, records_out=1), extra


def has_output(s3, bucket: str, key: str, version_tag: str, version: str) -> bool:
    found = storage.head(s3, bucket, key)
    written = user_metadata.decode_all(found.get("Metadata")) if found else {}
    return written.get("source-etag") == version_tag \
        and written.get("processor-version") == version
