"""Moving one object into the archive bucket: copy, verify, mark its results row, delete.

Per object: copy it with the configured storage class, verify the copy (the ETag
CopyObject answers, else size, then ETag or SHA-256 by HeadObject), update the results
row (an output: the row ARCHIVED; a rejects file or a thumbnail: the row's link to it),
and only then delete the original (DeleteObjects, 1,000 keys a call). Every step is
safe to repeat, so a run stopped anywhere loses nothing and the next run finishes the job:
- copy and original both exist: the copy is verified (re-copied if it does not match),
  the row marked, the original deleted;
- the original is gone: its row was marked before the delete, so nothing is left to do
  (and if it vanished between listing and copying, the copy's row is marked anyway).

The row is found through the `source` user metadata the processor writes on every
object (CopyObject keeps it on the copy), else, for outputs, through the first line's
`_metadata.source`; it is changed only while its `output` (`rejects`, `thumbnail`) still
names this object, so a file processed again since then keeps its newer row.

An entry is the run's dict for one listed object (key, archive_key, size, etag, ...);
these functions record what happened in it, and it is reported as it stands.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError
from common import results, storage, telemetry, user_metadata
from common.clients import results_table, s3_client

from archiving.layout import Settings, area_of

HEAD_BYTES = 64 * 1024  # enough of a JSON Lines file to read its first record
# ensure_copy verified the copy from the listing or CopyObject's answer: no HeadObject yet.
VERIFIED_WITHOUT_HEAD = "verified_without_head"


def existing_copies(s: Settings, entries: list[dict]) -> dict[str, dict]:
    """The archive bucket's objects among these entries' archive keys, by key.

    One ListObjectsV2 per 1,000 keys over the range the entries' archive keys span (per
    area), instead of a HeadObject per object: on a first run nothing is there, and an
    interrupted run's copies are found here. S3 listings are strongly consistent.
    """
    found: dict[str, dict] = {}
    by_area: dict[str, list[str]] = {}
    for entry in entries:
        area = area_of(s, entry["key"])
        if area is not None:
            by_area.setdefault(area.archive, []).append(entry["archive_key"])
    paginator = s3_client().get_paginator("list_objects_v2")
    for keys in by_area.values():
        first, last = min(keys), max(keys)
        common = os.path.commonprefix([first, last])
        # StartAfter is exclusive: a key's own prefix sorts just before it.
        pages = paginator.paginate(Bucket=s.archive_bucket, Prefix=common,
                                   StartAfter=first[:-1])
        for page in pages:
            contents = page.get("Contents", [])
            found.update((o["Key"], o) for o in contents if o["Key"] <= last)
            if contents and contents[-1]["Key"] >= last:
                break
    return found


def ensure_copy(s: Settings, entry: dict,
                after_copy: Callable[[], None] | None = None,
                listed: dict[str, dict] | None = None) -> dict | None:
    """The verified copy, copying (again) when it is missing or does not match: its
    HeadObject, or {VERIFIED_WITHOUT_HEAD: True} (with_metadata heads it when needed).

    None when the original vanished and no copy exists. after_copy runs between a copy and
    its verification (the archiver's crash-safety test hook). listed: existing_copies()
    for the entry's batch; a copy not there is not looked for again.
    """
    s3 = s3_client()
    existing = None
    if listed is None:
        existing = _head_copy(s3, s, entry)
    elif entry["archive_key"] in listed:
        found = listed[entry["archive_key"]]
        if _same(s, entry, found["Size"], found["ETag"], found.get("StorageClass")):
            return {VERIFIED_WITHOUT_HEAD: True}
        existing = _head_copy(s3, s, entry)
    if existing is not None and _matches(s3, s, entry, existing):
        return existing
    try:
        result = _copy(s3, s, entry)
    except ClientError as e:
        if not _missing(e):
            raise
        # The original went away after listing; a copy an earlier run made stands for it.
        if existing is not None:
            entry["status_note"] = "original already gone"
            return existing
        return None
    if after_copy is not None:
        after_copy()
    if result is not None and _same(s, entry, entry["size"], result.get("ETag"),
                                    s.storage_class):
        return {VERIFIED_WITHOUT_HEAD: True}
    copy = _head_copy(s3, s, entry)
    if copy is None or not _matches(s3, s, entry, copy):
        raise storage.VerifyError(f"copy s3://{s.archive_bucket}/{entry['archive_key']} does "
                                  f"not match s3://{s.processed_bucket}/{entry['key']}")
    return copy


def with_metadata(s: Settings, entry: dict, copy: dict) -> dict:
    """The copy's HeadObject (its user metadata names the row), if ensure_copy made none."""
    if not copy.get(VERIFIED_WITHOUT_HEAD):
        return copy
    head = _head_copy(s3_client(), s, entry)
    return head if head is not None else {}


def _same(s: Settings, entry: dict, size: int, etag: str | None, storage_class: str | None
          ) -> bool:
    """A copy is the listed object when its ETag is the original's single-part ETag.

    A single-part, SSE-S3 object's ETag is the MD5 of its bytes, and CopyObject keeps it
    (CopyObjectResult.ETag): the same ETag is the same bytes, so the same size. Multipart
    originals (outputs above 8 MiB) and SSE-KMS have other ETags: _matches hashes them.
    CopyObject stores the StorageClass it was asked for; a listed copy says its own.
    """
    return ("-" not in entry["etag"] and etag == entry["etag"] and size == entry["size"]
            and (storage_class or "STANDARD") == s.storage_class)


def _copy(s3, s: Settings, entry: dict) -> dict | None:
    """CopyObject's CopyObjectResult, or None from the managed copy of a large object."""
    source = {"Bucket": s.processed_bucket, "Key": entry["key"]}
    # IfMatch: copy the version that was listed (and sized), not a newer one.
    extra = {"StorageClass": s.storage_class, "ChecksumAlgorithm": "SHA256",
             "CopySourceIfMatch": entry["etag"], "MetadataDirective": "COPY"}
    if entry["size"] <= storage.COPY_OBJECT_LIMIT:
        return s3.copy_object(Bucket=s.archive_bucket, Key=entry["archive_key"],
                              CopySource=source, **extra).get("CopyObjectResult", {})
    extra.pop("MetadataDirective")  # the managed copy copies metadata itself
    s3.copy(source, s.archive_bucket, entry["archive_key"], ExtraArgs=extra)
    return None


def _missing(e: ClientError) -> bool:
    return e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def _head_copy(s3, s: Settings, entry: dict) -> dict | None:
    try:
        return s3.head_object(Bucket=s.archive_bucket, Key=entry["archive_key"],
                              ChecksumMode="ENABLED")
    except ClientError as e:
        if _missing(e):
            return None
        raise


def _matches(s3, s: Settings, entry: dict, copy: dict) -> bool:
    """Same size, and the same content by ETag (single-part MD5) or else by SHA-256."""
    if copy["ContentLength"] != entry["size"]:
        return False
    if copy.get("StorageClass", "STANDARD") != s.storage_class:
        return False
    # A single-part, SSE-S3 object's ETag is its MD5 and CopyObject keeps it. Multipart
    # sources (outputs above 8 MiB) and SSE-KMS have other ETags: hash the source then.
    if "-" not in entry["etag"] and copy["ETag"] == entry["etag"]:
        return True
    source = _sha256(s3, s.processed_bucket, entry["key"])
    if source is None:
        return False
    stored = copy.get("ChecksumSHA256")
    if stored and "-" not in stored:
        return stored == source
    return _sha256(s3, s.archive_bucket, entry["archive_key"]) == source


def _sha256(s3, bucket: str, key: str) -> str | None:
    found = storage.open_object(s3, bucket, key)
    if found is None:
        return None
    digest = hashlib.sha256()
    with found.body as body:
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


@dataclass(frozen=True)
class RowTarget:
    """The results row an archived object belongs to, and the link that moves."""
    row_key: str
    field: str  # "output", or the row field that names a rejects file or thumbnail
    processed_uri: str
    archive_uri: str


def row_target(s: Settings, entry: dict, copy: dict) -> RowTarget | str:
    """The row the copy's object names (its `source`), or why there is none."""
    area = area_of(s, entry["key"])
    assert area is not None, "entries are listed from the areas"
    source = user_metadata.decode_all(copy.get("Metadata")).get("source")
    if not source and area.row_field == "output":
        source = _source_from_first_line(s, entry)
    if not source or not source.startswith("s3://") or "/" not in source[5:]:
        return "no row: the object names no source file"
    # Rows are keyed by the source's bucket and key together (results.row_key).
    return RowTarget(row_key=results.row_key(*source[5:].split("/", 1)), field=area.row_field,
                     processed_uri=f"s3://{s.processed_bucket}/{entry['key']}",
                     archive_uri=f"s3://{s.archive_bucket}/{entry['archive_key']}")


def mark_row(s: Settings, entry: dict, copy: dict) -> str:
    """Point the source file's row at the copy; returns what happened to it."""
    target = row_target(s, entry, copy)
    return target if isinstance(target, str) else mark_target(s, target)


def mark_target(s: Settings, target: RowTarget) -> str:
    """mark_row once the row is known: read it, decide, change it (archiving/rows.py does
    the common case for many rows at once and comes here for the others)."""
    row_key, processed_uri, archive_uri = target.row_key, target.processed_uri, target.archive_uri
    table = results_table(s.results_table)
    row = results.get(table, row_key)
    if row is None:
        return f"no row for {row_key}"
    if target.field != "output":
        return _relink(table, row_key, row, target.field, processed_uri, archive_uri)
    if row.get("status") == results.ARCHIVED and row.get("output") == archive_uri:
        return f"{row_key}: already ARCHIVED"
    if row.get("output") != processed_uri:
        return f"{row_key}: left alone, its output is now {row.get('output')}"
    results.mark_archived(table, row_key, archive_uri, archived_from=processed_uri,
                          storage_class=s.storage_class)
    return f"{row_key}: ARCHIVED"


def _relink(table, row_key: str, row: dict, field: str, processed_uri: str,
            archive_uri: str) -> str:
    """A rejects file or thumbnail moved: its row's link follows, and nothing else changes.

    Not updated_at: it orders the by-status index, and a FAILED row updated now would show
    in `pipectl status` as a fresh failure (a file over the reject ratio keeps its rejects).
    """
    if row.get(field) == archive_uri:
        return f"{row_key}: {field} already archived"
    if row.get(field) != processed_uri:
        return f"{row_key}: left alone, its {field} is now {row.get(field)}"
    try:
        table.update_item(Key={results.RESULTS_PARTITION_KEY: row_key},
                          UpdateExpression="SET #f = :to", ConditionExpression="#f = :from",
                          ExpressionAttributeNames={"#f": field},
                          ExpressionAttributeValues={":to": archive_uri, ":from": processed_uri})
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return f"{row_key}: left alone, its {field} changed meanwhile"
    return f"{row_key}: {field} archived"


def _source_from_first_line(s: Settings, entry: dict) -> str | None:
    """`_metadata.source` of the first record, for outputs written without the metadata."""
    s3 = s3_client()
    for bucket, key in ((s.archive_bucket, entry["archive_key"]),
                        (s.processed_bucket, entry["key"])):
        try:
            body = s3.get_object(Bucket=bucket, Key=key,
                                 Range=f"bytes=0-{HEAD_BYTES - 1}")["Body"].read()
        except ClientError as e:
            if _missing(e):
                continue
            raise
        try:
            first = json.loads(body.split(b"\n", 1)[0])
            return first["_metadata"]["source"]
        except (ValueError, KeyError, TypeError):
            return None
    return None


def delete_originals(s: Settings, ready: list[dict]) -> None:
    """Delete the originals whose copies are verified and rows marked (at most 1,000, one
    DeleteObjects call); each entry ends moved, or error when its delete failed."""
    if not ready:
        return
    r = s3_client().delete_objects(Bucket=s.processed_bucket, Delete={
        "Objects": [{"Key": e["key"]} for e in ready], "Quiet": True})
    # DeleteObjects answers 200 even when keys fail: each failure is in Errors.
    failed = {e["Key"]: f"{e.get('Code')}: {e.get('Message')}" for e in r.get("Errors", [])}
    for entry in ready:
        if entry["key"] in failed:
            entry["status"], entry["error"] = "error", f"delete failed: {failed[entry['key']]}"
            telemetry.log("ERROR", "archived but the original could not be deleted; the next "
                          "run retries", key=entry["key"], status="ERROR", error=entry["error"])
        else:
            entry["status"] = "moved"
            telemetry.log("INFO", "archived", key=entry["key"], status=results.ARCHIVED,
                          archive_key=entry["archive_key"], bytes=entry["size"],
                          storage_class=s.storage_class)
