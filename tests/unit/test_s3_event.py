"""s3_event over generated events: any key, any record count, every envelope.

Shapes as AWS documents them (see tests/functional/test_event_shapes.py for the links):
a notification URL-encodes its keys (space -> "+", "+" -> "%2B"; moto also encodes
"/"), EventBridge carries them as they are; SNS and SQS wrap the JSON in a string.
"""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
from common import s3_event
from hypothesis import given, settings
from hypothesis import strategies as st

# Any key S3 accepts: UTF-8, 1-1024 bytes (kept short here); "+", "%", "#", spaces.
KEYS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
               max_size=60).map(lambda k: "incoming/" + k)
CREATED = st.sampled_from(["ObjectCreated:Put", "ObjectCreated:Post", "ObjectCreated:Copy",
                           "ObjectCreated:CompleteMultipartUpload"])
OTHER = st.sampled_from(["ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated",
                         "ObjectRestore:Completed", "LifecycleExpiration:Delete"])
VERSIONS = st.one_of(st.none(), st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789._",
                                        min_size=32, max_size=32))
ENCODINGS = {
    "aws": lambda key: quote_plus(key, safe="/"),          # what S3 sends
    "moto": lambda key: quote_plus(key, safe=""),          # moto encodes "/" too
}


@st.composite
def records(draw):
    """(record, expected S3Object or None) for one notification record."""
    key, name, version = draw(KEYS), draw(st.one_of(CREATED, OTHER)), draw(VERSIONS)
    encode = ENCODINGS[draw(st.sampled_from(sorted(ENCODINGS)))]
    obj = {"key": encode(key), "size": draw(st.integers(0, 5 * 1024 ** 4)),
           "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}
    if version is not None:
        obj["versionId"] = version
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
              "s3": {"bucket": {"name": "raw-bucket"}, "object": obj}}
    expected = (key, version) if name.startswith("ObjectCreated") else None
    return record, expected


def sns_envelope(message: dict) -> dict:
    return {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": json.dumps(message), "Timestamp": "2026-11-23T14:00:00.000Z"}


@given(batch=st.lists(records(), min_size=1, max_size=8),
       wrap=st.sampled_from(["sqs", "sqs+sns", "direct", "direct sns"]))
@settings(max_examples=200, deadline=None)
def test_every_created_record_comes_out_decoded_in_order(batch, wrap):
    notification = {"Records": [record for record, _ in batch]}
    if wrap == "sqs":
        found = s3_event.created_objects(json.dumps(notification))
    elif wrap == "sqs+sns":
        found = s3_event.created_objects(json.dumps(sns_envelope(notification)))
    elif wrap == "direct":
        assert s3_event.is_direct_event(notification)
        found = s3_event.created_objects(notification)
    else:
        event = {"Records": [{"EventSource": "aws:sns", "Sns": sns_envelope(notification)}]}
        assert s3_event.is_direct_event(event)
        found = s3_event.created_objects(event)
    assert [(o.key, o.version_id) for o in found] == [e for _, e in batch if e is not None]
    assert all(o.bucket == "raw-bucket" for o in found)


@given(key=KEYS, version=VERSIONS, in_sqs=st.booleans(),
       kind=st.sampled_from(["Object Created", "Object Deleted", "Object Restore Completed"]))
@settings(max_examples=100, deadline=None)
def test_eventbridge_keys_are_taken_as_they_are(key, version, in_sqs, kind):
    detail = {"bucket": {"name": "raw-bucket"},
              "object": {"key": key, "size": 1, "etag": "abc", "sequencer": "01",
                         **({"version-id": version} if version else {})},
              "reason": "PutObject"}
    event = {"version": "0", "detail-type": kind, "source": "aws.s3", "detail": detail}
    found = s3_event.created_objects(json.dumps(event) if in_sqs else event)
    if kind != "Object Created":
        assert found == []
        return
    assert [(o.key, o.version_id, o.event_name) for o in found] == [
        (key, version, "ObjectCreated:PutObject")]


@given(value=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                          lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                          max_leaves=10))
@settings(max_examples=200, deadline=None)
def test_any_other_json_is_refused_or_empty_never_a_crash(value):
    try:
        found = s3_event.created_objects(json.dumps(value))
    except s3_event.UnknownEvent as e:
        assert str(e)          # a reason to log
    else:
        assert found == []     # {"Records": []}, {"Event": "s3:TestEvent"}, ...


@pytest.mark.parametrize("encoded, key", [
    ("incoming/my+file.csv", "incoming/my file.csv"),
    ("incoming/c%2B%2B.csv", "incoming/c++.csv"),
    ("incoming%2Fsub%2Fa%2Bb+c.csv", "incoming/sub/a+b c.csv"),      # moto's "/" encoding
    ("incoming/100%25.csv", "incoming/100%.csv"),
    (quote("incoming/ü #1.csv"), "incoming/ü #1.csv"),             # %20 (LocalStack) too
])
def test_hand_picked_key_encodings(encoded, key):
    body = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": "b"}, "object": {"key": encoded}}}]}
    assert [o.key for o in s3_event.created_objects(json.dumps(body))] == [key]


def test_versionid_null_is_no_version():
    # A bucket with versioning suspended names its objects' version "null": read the current.
    body = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": "b"},
                                "object": {"key": "k", "versionId": "null"}}}]}
    assert s3_event.created_objects(json.dumps(body))[0].version_id is None
