"""The archiver against a sequential copy+delete loop, on the same moto server, side by side.

    python bench/archive.py [--objects 500] [--rounds 2] [--concurrency N] [--handlers DIR]

pipectl's emulator (bench/burst.py's emulator process: the moto patches, and a count
of the requests it serves) runs in its own process. Each round puts --objects fresh
processed outputs (each with its `source` metadata and a PROCESSED results row, as
the processor leaves them), then, alternating which goes first:
- loop: for each object CopyObject to the archive bucket, then DeleteObject: the
  least any archiver must do, one object after the other, nothing verified or recorded;
- archiver: handlers/archiver.py's lambda_handler, in this process, as the local
  runtime runs it: copies verified, rows ARCHIVED, originals deleted.
Printed: objects/s and requests per object as the server counted them (S3 and
DynamoDB apart), CPU per object of moto and of this process, medians over the
rounds, and the ratio archiver/loop. --handlers runs another checkout's handlers
(e.g. the main branch's) for a before/after figure.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from burst import ENV, EmulatorProcess  # noqa: E402 - bench/ is not a package

PROCESSED, ARCHIVE, TABLE, RAW = "bench-processed", "bench-archive", "bench-results", "bench-raw"
BODY = b'{"user_name":"ada","_metadata":{"source":"s3://bench-raw/incoming/x.csv"}}\n' * 20


def clients(endpoint: str):
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    return (session.client("s3", endpoint_url=endpoint),
            session.resource("dynamodb", endpoint_url=endpoint).Table(TABLE))


def create(s3, table_resource) -> None:
    for bucket in (PROCESSED, ARCHIVE):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    table_resource.meta.client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "object_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                              for n in ("object_key", "status", "updated_at")],
        GlobalSecondaryIndexes=[{   # as pipectl deploy makes it (pipectl/aws/dynamodb.py)
            "IndexName": "by-status", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                          {"AttributeName": "updated_at", "KeyType": "RANGE"}]}])


def put_objects(s3, table, prefix: str, objects: int, rows: bool) -> None:
    """Outputs as the processor writes them: `source` metadata, a PROCESSED row each."""
    from concurrent.futures import ThreadPoolExecutor

    def put(i: int) -> None:
        source = f"{prefix}{i}.csv"
        key = f"{prefix}{i}.csv.jsonl"
        s3.put_object(Bucket=PROCESSED, Key=key, Body=BODY,
                      Metadata={"source": f"s3://{RAW}/incoming/{source}"})
        if rows:
            table.put_item(Item={"object_key": f"s3://{RAW}/incoming/{source}",
                                 "bucket": RAW, "key": f"incoming/{source}",
                                 "status": "PROCESSED", "updated_at": now_iso(),
                                 "output": f"s3://{PROCESSED}/{key}"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(objects)))
    if rows:
        table.update_item(Key={"object_key": "__counters__"}, UpdateExpression="ADD #p :n",
                          ExpressionAttributeNames={"#p": "PROCESSED"},
                          ExpressionAttributeValues={":n": objects})


def now_iso() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat()


def loop(s3, prefix: str) -> int:
    """The baseline: copy, then delete, one object after the other."""
    listed = s3.list_objects_v2(Bucket=PROCESSED, Prefix=prefix).get("Contents", [])
    for obj in listed:
        s3.copy_object(Bucket=ARCHIVE, Key=f"loop-archive/{obj['Key']}",
                       CopySource={"Bucket": PROCESSED, "Key": obj["Key"]},
                       StorageClass="STANDARD_IA")
        s3.delete_object(Bucket=PROCESSED, Key=obj["Key"])
    return len(listed)


def run_archiver(endpoint: str) -> int:
    import archiver

    os.environ.update(ENV, AWS_ENDPOINT_URL=endpoint, PROCESSED_BUCKET=PROCESSED,
                      ARCHIVE_BUCKET=ARCHIVE, RESULTS_TABLE=TABLE)
    archiver.reset_clients()
    with contextlib.redirect_stdout(io.StringIO()):     # one log line per object
        summary = archiver.lambda_handler({"older_than_days": 0}, None)
    if summary["errors"] or summary["remaining"]:
        raise SystemExit(f"the archiver left errors or work: {summary}")
    return summary["moved"]


def split(served: Counter) -> tuple[int, int]:
    """(S3, DynamoDB) requests: S3's responses bypass the per-action count (burst.py)."""
    dynamodb = sum(n for name, n in served.items() if name.startswith("DynamoHandler."))
    others = sum(n for name, n in served.items() if name != "all" and "." in name)
    return served["all"] - others, dynamodb


def measure(emulator: EmulatorProcess, impl: str, work) -> dict:
    before, server_cpu = emulator.served(), emulator.cpu_seconds()
    start, client_cpu = time.perf_counter(), time.process_time()
    objects = work()
    seconds = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu
    s3_calls, dynamodb_calls = split(emulator.served() - before)
    return {"impl": impl, "objects": objects, "seconds": seconds,
            "s3": s3_calls / objects, "dynamodb": dynamodb_calls / objects,
            "server_ms": (emulator.cpu_seconds() - server_cpu) * 1000 / objects,
            "client_ms": client_cpu * 1000 / objects}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, default=500)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=None,
                   help="ARCHIVER_CONCURRENCY for the archiver (default: the handler's)")
    p.add_argument("--handlers", default=str(ROOT / "handlers"),
                   help="the handlers directory to run (another checkout's, to compare)")
    a = p.parse_args()
    sys.path.insert(0, str(Path(a.handlers).resolve()))
    if a.concurrency is not None:
        os.environ["ARCHIVER_CONCURRENCY"] = str(a.concurrency)
    emulator = EmulatorProcess(patched=True)
    try:
        s3, table = clients(emulator.endpoint)
        create(s3, table)
        figures: dict[str, list[dict]] = {"loop": [], "archiver": []}
        for n in range(a.rounds):
            put_objects(s3, table, f"loop/{n}/", a.objects, rows=False)
            put_objects(s3, table, f"processed/2024/01/{n + 1:02d}/", a.objects, rows=True)
            order = ("loop", "archiver") if n % 2 == 0 else ("archiver", "loop")
            for impl in order:
                work = (lambda n=n: loop(s3, f"loop/{n}/")) if impl == "loop" \
                    else (lambda: run_archiver(emulator.endpoint))
                f = measure(emulator, impl, work)
                figures[impl].append(f)
                print(f"round {n + 1} {impl:8} {f['objects']} objects in {f['seconds']:5.2f}s")
    finally:
        emulator.stop()
    print(f"\n{a.objects} objects per round, {a.rounds} rounds, handlers {a.handlers}")
    median = {}
    for impl, runs in figures.items():
        runs.sort(key=lambda f: f["objects"] / f["seconds"])
        m = median[impl] = runs[len(runs) // 2]
        print(f"  {impl:8} {m['objects'] / m['seconds']:8.1f} objects/s   requests per object: "
              f"S3 {m['s3']:.3f}, DynamoDB {m['dynamodb']:.3f}, "
              f"total {m['s3'] + m['dynamodb']:.3f}; CPU per object: moto "
              f"{m['server_ms']:.1f} ms, client {m['client_ms']:.1f} ms")
    rate = {impl: m["objects"] / m["seconds"] for impl, m in median.items()}
    print(f"  ratio archiver/loop: {rate['archiver'] / rate['loop']:.2f}x objects/s")


if __name__ == "__main__":
    main()
