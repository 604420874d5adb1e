"""Pure rules of upload: which key each file gets, and which files no suffix rule processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.errors import UsageError
from pipectl.ops.transfer import LocalFile, Location, unprocessed, upload_keys

SUFFIXES = (".json", ".jsonl", ".csv", ".txt", ".csv.gz")
segment = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
                  min_size=1, max_size=20).filter(lambda s: s not in (".", ".."))
relative = st.lists(segment, min_size=1, max_size=4).map("/".join)
name = st.one_of(
    st.sampled_from(["a.csv", "UPPER.CSV", "x.bin", "data.csv.gz", "notes.TXT", "r.json ",
                     "weird.jsonl", "no-suffix", ".csv", "a.csv.bak"]),
    st.tuples(segment, st.sampled_from(SUFFIXES + (".CSV", ".Json", ".bin", ""))).map("".join))


def local(rel: str, in_directory: bool = False) -> LocalFile:
    return LocalFile(Path("src") / rel, rel, 1, in_directory)


@settings(max_examples=60, deadline=None)
@given(rels=st.lists(relative, min_size=1, max_size=8, unique=True),
       prefix=st.sampled_from(["", "incoming/", "a b/+%#/", "ünï/"]))
def test_a_prefix_keeps_every_relative_path(rels, prefix):
    keys = upload_keys([local(r, True) for r in rels], Location("b", prefix))

    assert keys == [prefix + r for r in rels]
    assert len(set(keys)) == len(keys)


@settings(max_examples=40, deadline=None)
@given(rels=st.lists(relative, min_size=2, max_size=6, unique=True), key=relative)
def test_several_files_to_a_key_are_refused(rels, key):
    with pytest.raises(UsageError, match=f"^{len(rels)} files need a prefix ending in /"):
        upload_keys([local(r) for r in rels], Location("b", key))


def test_one_file_to_a_key_is_that_key_and_a_directory_needs_a_prefix():
    assert upload_keys([local("a.csv")], Location("b", "in/x.csv")) == ["in/x.csv"]
    with pytest.raises(UsageError, match="^a directory needs a prefix ending in /"):
        upload_keys([local("d/a.csv", True)], Location("b", "in/x"))


@settings(max_examples=100, deadline=None)
@given(names=st.lists(name, min_size=1, max_size=6, unique=True))
def test_a_warning_exactly_for_keys_no_rule_matches(names):
    files = [local(n) for n in names]
    keys = ["incoming/" + n for n in names]

    warnings = unprocessed(files, keys, "incoming/", SUFFIXES)

    expected = [n for n in names if not n.endswith(SUFFIXES)]
    assert [w.split(": no processor.suffixes", 1)[0] for w in warnings] == [
        str(Path("src") / n) for n in expected]
    for n, warning in zip(expected, warnings, strict=True):
        case_only = n.lower().endswith(tuple(s.lower() for s in SUFFIXES))
        assert ("(S3 filters are case-sensitive)" in warning) == case_only
        assert warning.endswith("; it will not be processed")


def test_no_warning_outside_the_incoming_prefix():
    assert unprocessed([local("x.bin")], ["elsewhere/x.bin"], "incoming/", SUFFIXES) == []
    assert unprocessed([local("UPPER.CSV")], ["incoming/UPPER.CSV"], "incoming/", SUFFIXES) == [
        "src/UPPER.CSV: no processor.suffixes rule matches (S3 filters are case-sensitive); "
        "it will not be processed"]
