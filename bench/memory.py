"""Peak memory and records/s of the real processor handler by input size, next to DuckDB.

    python bench/memory.py [--sizes 10,100,1000] [--formats jsonl,parquet] [--keep]

For each size (MB) a CSV of that size (the bench/transform.py records) is
generated under bench/out/ (reused when present) and uploaded into a moto server
on 127.0.0.1 in its own process: bench/moto_disk.py, because stock moto joins
multipart parts in memory (~15 GB for the 1 GB input's 4.5 GB output) and that
one joins them on disk. Its peak RSS is printed too: moto still reads whole
objects into memory to serve and copy them, so the emulator needs gigabytes.

A fresh child process then imports handlers/processor.py, boto3 and all, and
calls processor.lambda_handler once with an SQS-shaped S3 event for the object,
exactly as the local runtime and Lambda do: download (streamed), normalize,
write JSON Lines (multipart, one part uploading while the next fills), results
row, move. The child reports its own peak RSS (VmHWM) before and after the
invocation, and how long its own thread waited on S3 calls ("s3 wait": mostly
moto joining the parts and copying the input, which S3 does server-side).

DuckDB (pip install -e '.[bench]') normalizes the same file with the same rules
(lower snake_case names, null/blank values dropped, _metadata added, JSON Lines
out) single-threaded (SET threads=1), in its own child, reading and writing local
files. Its output is hashed and compared with the processor core's output
(transform.process_stream) for the smallest size: equal digests prove equal rules.
The handler's records/s includes every S3 and DynamoDB call to the moto server;
DuckDB's does no network I/O at all.

--formats runs the handler once per output format (OUTPUT_FORMAT, as deploy sets it
from pipeline.yaml's output:), each on its own upload of the same file, so the Parquet
writer's peak RSS stands beside the JSON Lines one.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
HANDLERS = ROOT / "handlers"
HEADER = ["User Name", "Email Address", "Age", "City", "Signup Date", "Notes"]
CITIES = ["Berlin", "Lisbon", "Osaka", "Lima", "Oslo", "", "  "]
RAW, PROCESSED, TABLE = "bench-raw", "bench-processed", "bench-results"
META = {"processed_at": "2026-11-23T14:00:00.000000+00:00", "environment": "bench",
        "processor_version": "1.0.0", "source": "s3://bench-raw/incoming/bench.csv"}
MB = 1_000_000


def generate(mb: int) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"memory-{mb}mb.csv"
    if path.exists():
        return path
    rnd = random.Random(42)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        start = 0
        while f.tell() < mb * MB:
            rows = []
            for i in range(start, start + 10_000):
                rows.append([f"user {i}", f"user{i}@example.com" if i % 5 else "",
                             str(rnd.randint(18, 90)), rnd.choice(CITIES),
                             f"2026-{i % 12 + 1:02d}-15",
                             "" if i % 3 else f"note {i}, with a comma"])
            writer.writerows(rows)
            start += 10_000
    tmp.rename(path)
    return path


def peak_kib() -> int:
    """This process's peak RSS in KiB: VmHWM, which starts afresh at exec.

    (ru_maxrss does not: a child forked from this big parent - the moto server holds
    every object - starts with the parent's high-water mark, so it is only a fallback.)
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- children -------------------------------------------------------------------------

def handler_child(endpoint: str, key: str, fmt: str = "jsonl") -> None:
    if fmt != "jsonl":
        os.environ["OUTPUT_FORMAT"] = fmt
    os.environ.update({
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1", "PROCESSED_BUCKET": PROCESSED, "RESULTS_TABLE": TABLE,
        "RAW_BUCKET": RAW, "ENVIRONMENT": "bench", "PIPELINE": "bench",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "3600"})
    sys.path.insert(0, str(HANDLERS))
    import boto3
    import processor

    body = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": RAW}, "object": {"key": key}}}]}
    event = {"Records": [{"messageId": "bench-1", "body": json.dumps(body),
                          "eventSource": "aws:sqs"}]}
    # Warm: clients built and modules loaded, as in a warm Lambda; not part of the figure.
    s3 = processor.s3_client()
    processor.results_table(TABLE)
    waited, started = [0.0], {}
    main_thread = threading.main_thread()

    def before_call(model, **_):
        if threading.current_thread() is main_thread:
            started[model.name] = time.perf_counter()

    def after_call(model, **_):
        if model.name in started and threading.current_thread() is main_thread:
            waited[0] += time.perf_counter() - started.pop(model.name)

    s3.meta.events.register("before-call.s3", before_call)
    s3.meta.events.register("after-call.s3", after_call)
    before, cpu = peak_kib(), cpu_seconds()
    start = time.perf_counter()
    result = processor.lambda_handler(event, None)
    seconds = time.perf_counter() - start
    after, cpu = peak_kib(), cpu_seconds() - cpu
    row = boto3.resource("dynamodb").Table(TABLE).get_item(
        Key={"object_key": f"s3://{RAW}/{key}"}, ConsistentRead=True).get("Item")  # row_key
    if row is None:
        raise SystemExit(f"no results row for {key}: {result}")
    print(json.dumps({"seconds": seconds, "before_kib": before, "peak_kib": after,
                      "cpu": cpu, "s3_wait": waited[0], "records": int(row.get("records_in", 0)),
                      "status": row["status"], "error": row.get("error"),
                      "failures": result["batchItemFailures"]}))


def duckdb_child(path: str, out: str) -> None:
    sys.path.insert(0, str(HANDLERS))
    import duckdb
    from processing.transform import snake_case

    con = duckdb.connect()
    con.execute("SET threads=1")
    before, cpu = peak_kib(), cpu_seconds()
    start = time.perf_counter()
    columns = ", ".join(
        f"struct_pack(k := '{snake_case(h)}', v := \"{h}\")" for h in HEADER)
    meta = json.dumps(META, separators=(",", ":")).replace("'", "''")
    con.execute(f"""
        COPY (
            SELECT left(j, length(j) - 1) || ',"_metadata":{meta}}}' AS line
            FROM (SELECT to_json(map_from_entries(list_filter([{columns}],
                         lambda x: x.v IS NOT NULL AND trim(x.v) <> ''))) AS j
                  FROM read_csv('{path}', header = true, all_varchar = true,
                                quote = '"', escape = '"'))
            WHERE j <> '{{}}'
        ) TO '{out}' (FORMAT CSV, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\t')
    """)
    records = con.execute(f"SELECT count(*) FROM read_csv('{path}', header = true, "
                          "all_varchar = true)").fetchone()[0]
    seconds = time.perf_counter() - start
    after, cpu = peak_kib(), cpu_seconds() - cpu
    print(json.dumps({"seconds": seconds, "before_kib": before, "peak_kib": after,
                      "cpu": cpu, "records": records}))


def core_digest(path: Path) -> str:
    sys.path.insert(0, str(HANDLERS))
    from processing import transform

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        transform.process_stream("csv", f, digest.update, META)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run_child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"child {args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the run --------------------------------------------------------------------------

def setup(endpoint: str):
    import boto3

    kw = {"endpoint_url": endpoint, "region_name": "us-east-1",
          "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3 = boto3.client("s3", **kw)
    for bucket in (RAW, PROCESSED):
        s3.create_bucket(Bucket=bucket)
    boto3.client("dynamodb", **kw).create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "object_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "object_key", "AttributeType": "S"}])
    return s3


def start_moto() -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "moto_disk.py"),
                               "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the moto server did not start on port {port}") from None
            time.sleep(0.1)


def server_peak_kib(server: subprocess.Popen) -> int | None:
    # VmHWM only grows: this is the server's peak over every size so far.
    try:
        for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def warm_up(s3) -> None:
    """One multipart object through the server before the first figure, as the inputs'
    own uploads (single PUTs below 64 MB) would not load moto's multipart and copy paths."""
    from boto3.s3.transfer import TransferConfig

    part = 5 * 2 ** 20
    s3.upload_fileobj(io.BytesIO(b"x" * (2 * part)), RAW, "warm-up",
                      Config=TransferConfig(multipart_threshold=part, multipart_chunksize=part))
    s3.copy_object(Bucket=RAW, Key="warm-up-copy", CopySource={"Bucket": RAW, "Key": "warm-up"})
    empty_buckets(s3)


def empty_buckets(s3) -> None:
    for bucket in (RAW, PROCESSED):
        for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=o["Key"])


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:7.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10,100,1000", help="input sizes in MB, comma-separated")
    p.add_argument("--keep", action="store_true", help="keep the DuckDB output files")
    p.add_argument("--formats", default="jsonl",
                   help="output formats for the handler, comma-separated (jsonl, jsonl.gz, "
                        "parquet)")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs per size up to 100 MB, the median reported (larger sizes: one)")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        kind, *args = a.child
        (handler_child if kind == "handler" else duckdb_child)(*args)
        return

    from boto3.s3.transfer import TransferConfig

    sizes = [int(s) for s in a.sizes.split(",")]
    server, endpoint = start_moto()
    s3 = setup(endpoint)
    rows = []
    warm_up(s3)
    try:
        for mb in sizes:
            t = time.perf_counter()
            path = generate(mb)
            prepared = time.perf_counter() - t
            runs = a.repeat if mb <= 100 else 1
            handlers: dict[str, list] = {fmt: [] for fmt in a.formats.split(",")}
            ducks = []
            for run in range(runs):
                for fmt, found in handlers.items():
                    # A new key per run: the same key would find its PROCESSED row and only
                    # finish a move (the duplicate-delivery path), not process the file.
                    key = f"incoming/bench-{mb}mb-{fmt}-{run + 1}.csv"
                    s3.upload_file(str(path), RAW, key, Config=TransferConfig(
                        multipart_chunksize=64 * 2 ** 20, max_concurrency=4))
                    found.append(run_child("--child", "handler", endpoint, key, fmt))
                    empty_buckets(s3)       # free the emulator's memory before the next run
                out = OUT / f"memory-{mb}mb.duckdb.jsonl"
                ducks.append(run_child("--child", "duckdb", str(path), str(out)))
            duck = median_run(ducks)
            same = ""
            if mb == min(sizes):
                same = "same output" if file_digest(out) == core_digest(path) else "OUTPUT DIFFERS"
            if not a.keep:
                out.unlink(missing_ok=True)
            for fmt, found in handlers.items():
                handler = median_run(found)
                rows.append((mb, path.stat().st_size, fmt, handler, duck, same,
                             server_peak_kib(server)))
                print(f"{mb} MB done: handler ({fmt}) {handler['status']} in "
                      f"{handler['seconds']:.1f}s, duckdb {duck['seconds']:.1f}s, median of "
                      f"{runs} (input generated in {prepared:.1f}s)", file=sys.stderr,
                      flush=True)
    finally:
        server.terminate()
        server.wait()

    # records/s by wall time; "cpu" divides by the process's own CPU time instead (the
    # handler's wall time also holds the moto server's work on the other side of the socket).
    print(f"{'size':>6} {'format':>8} {'records':>10} | {'handler peak RSS':>16} "
          f"{'(warm idle)':>11} {'records/s':>9} {'(cpu)':>9} {'s3 wait':>7} | "
          f"{'duckdb peak RSS':>15} {'records/s':>9} {'(cpu)':>9} | wall ratio | {'moto peak':>9}")
    for _mb, size, fmt, h, d, same, moto_kib in rows:
        h_rate, d_rate = h["records"] / h["seconds"], d["records"] / d["seconds"]
        print(f"{size / MB:4.0f}MB {fmt:>8} {h['records']:>10,} | {mib(h['peak_kib']):>12} MiB "
              f"{mib(h['before_kib']):>7} MiB {h_rate:>9,.0f} {h['records'] / h['cpu']:>9,.0f} "
              f"{h['s3_wait']:>6.1f}s | {mib(d['peak_kib']):>11} MiB {d_rate:>9,.0f} "
              f"{d['records'] / d['cpu']:>9,.0f} | {h_rate / d_rate:>9.2f}x | "
              f"{mib(moto_kib)} MiB {same}")
    for fmt in a.formats.split(","):
        mine = [r for r in rows if r[2] == fmt]
        if len(mine) > 1:
            growth = mine[-1][3]["peak_kib"] - mine[0][3]["peak_kib"]
            print(f"handler ({fmt}) peak RSS growth {mine[0][0]} MB -> {mine[-1][0]} MB: "
                  f"{growth / 1024:+.1f} MiB")


if __name__ == "__main__":
    main()
