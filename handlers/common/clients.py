"""AWS clients for the handlers: created on first use (so tests can mock them) and reused
while the execution environment stays warm. The cache key follows the endpoint and
region, so a restarted emulator on another port gets fresh clients."""

from __future__ import annotations

import os
import threading

import boto3

from common import contract

_clients: dict = {}
_lock = threading.Lock()
_local = threading.local()
_generation = 0  # bumped by reset_clients, so every thread drops its Tables too


def _cached(kind: str, factory):
    key = (kind, os.environ.get(contract.AWS_ENDPOINT_URL),
           os.environ.get(contract.AWS_REGION) or os.environ.get(contract.AWS_DEFAULT_REGION))
    with _lock:
        if key not in _clients:
            _clients[key] = factory()
        return _clients[key]


def s3_client():
    return _cached("s3", lambda: boto3.client("s3"))


def sqs_client():
    return _cached("sqs", lambda: boto3.client("sqs"))


def dynamodb_client():
    return _cached("dynamodb", lambda: boto3.client("dynamodb"))


def results_table(name: str):
    # boto3 clients are thread-safe, resources are not: one Table per thread.
    tables = getattr(_local, "tables", None)
    if tables is None:
        tables = _local.tables = {}
    key = (_generation, f"table:{name}", os.environ.get(contract.AWS_ENDPOINT_URL),
           os.environ.get(contract.AWS_REGION) or os.environ.get(contract.AWS_DEFAULT_REGION))
    if key not in tables:
        tables.clear()
        tables[key] = boto3.resource("dynamodb").Table(name)
    return tables[key]


def reset_clients() -> None:
    global _generation
    with _lock:
        _clients.clear()
        _generation += 1
