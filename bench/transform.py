"""Benchmark the processor core (processing/transform.py) against a naive version and DuckDB.

    python bench/transform.py [--rows 1000000] [--trace-rows 100000] [--no-tracemalloc]
                              [--rounds 3]

Generates a CSV and a JSON Lines file of the same records under bench/out/
(gitignored; reused when present), then runs each implementation on each input in
a fresh child process, so ru_maxrss (the process high-water mark) is meaningful:
one child measures records/s and ru_maxrss growth over the full input, another
the tracemalloc peak. tracemalloc slows the naive version about 5x, so by default
the traced children read the first --trace-rows rows (the same generator and seed,
so the same records), and the traced naive child runs beside the timed naive one;
--trace-rows 0 traces the full input (slow). Both
implementations get the same metadata and hash their output: equal digests prove
equal output.

DuckDB (pip install -e '.[bench]') then does the same job on the same files with the
same rules (lower snake_case names, null/blank values dropped, _metadata added,
compact JSON Lines out) single-threaded (SET threads=1), in its own child, reading
the file and writing its output to bench/out/; its output is hashed afterwards and
must equal the core's. Core and DuckDB run --rounds times, interleaved (this machine
is shared: a neighbour's load hits both alike), and the median of each is compared.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT / "handlers"))

HEADER = ["User Name", "Email Address", "Age", "City", "Signup Date", "Notes"]
CITIES = ["Berlin", "Lisbon", "Osaka", "Lima", "Oslo", "", "  "]
META = {"processed_at": "2026-11-23T14:00:00.000000+00:00", "environment": "bench",
        "processor_version": "1.0.0", "source": "s3://raw/incoming/bench"}


def generate(rows: int) -> dict[str, Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    paths = {"csv": OUT / f"records-{rows}.csv", "jsonl": OUT / f"records-{rows}.jsonl"}
    if all(p.exists() for p in paths.values()):
        return paths
    rnd = random.Random(42)
    with open(paths["csv"], "w", newline="", encoding="utf-8") as c, \
            open(paths["jsonl"], "w", encoding="utf-8") as j:
        writer = csv.writer(c)
        writer.writerow(HEADER)
        for i in range(rows):
            row = [f"user {i}", f"user{i}@example.com" if i % 5 else "",
                   str(rnd.randint(18, 90)), rnd.choice(CITIES), f"2026-{i % 12 + 1:02d}-15",
                   "" if i % 3 else f"note {i}, with a comma"]
            writer.writerow(row)
            record = {k: (v if v else None) for k, v in zip(HEADER, row, strict=True)}
            j.write(json.dumps(record) + "\n")
    return paths


# --- the naive baseline: everything in memory, a regex per key per record -----------

def naive_snake(name: str) -> str:
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name.strip())
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return re.sub(r"[\W_]+", "_", s).strip("_").lower() or "_"


def naive_normalize(record: dict) -> dict:
    out = {}
    for k, v in record.items():
        if isinstance(v, dict):
            v = naive_normalize(v)
        if v is None or (isinstance(v, str) and not v.strip()) or v == [] or v == {}:
            continue
        out[naive_snake(k)] = v
    return out


def naive(kind: str, path: Path) -> tuple[int, str]:
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    if kind == "csv":
        records = list(csv.DictReader(io.StringIO(text, newline="")))
    else:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    out = []
    for r in records:
        r = naive_normalize(r)
        if r:
            r["_metadata"] = META
            out.append(json.dumps(r, ensure_ascii=False, separators=(",", ":")))
    data = ("\n".join(out) + "\n").encode() if out else b""
    return len(records), hashlib.sha256(data).hexdigest()


def core(kind: str, path: Path) -> tuple[int, str]:
    from processing import transform

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        counts = transform.process_stream(kind, f, digest.update, META)
    return counts.records_in, digest.hexdigest()


def duckdb_run(kind: str, path: Path) -> tuple[int, str]:
    """The same rules in SQL. Every value of these files is a string or null, so all
    columns are read as VARCHAR (as the processor keeps them: no type inference)."""
    import duckdb
    from processing.transform import snake_case

    con = duckdb.connect()
    con.execute("SET threads=1")
    out = OUT / f"duckdb-{kind}.jsonl"
    pairs = ", ".join(f"struct_pack(k := '{snake_case(h)}', v := \"{h}\")" for h in HEADER)
    meta = json.dumps(META, separators=(",", ":")).replace("'", "''")
    if kind == "csv":
        source = f"read_csv('{path}', header = true, all_varchar = true, quote = '\"', " \
                 "escape = '\"')"
    else:
        columns = "{" + ", ".join(f"'{h}': 'VARCHAR'" for h in HEADER) + "}"
        source = f"read_json('{path}', format = 'newline_delimited', columns = {columns})"
    # COPY answers the rows it wrote: every record of these files keeps its user name,
    # so that is the records read too (counting them in SQL would read the file twice).
    written = con.execute(f"""
        COPY (
            SELECT left(j, length(j) - 1) || ',"_metadata":{meta}}}' AS line
            FROM (SELECT to_json(map_from_entries(list_filter([{pairs}],
                         lambda x: x.v IS NOT NULL AND trim(x.v) <> ''))) AS j
                  FROM {source})
            WHERE j <> '{{}}'
        ) TO '{out}' (FORMAT CSV, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\t')
    """)
    return written.fetchone()[0], f"file:{out}"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- measurement (one child process per figure) -------------------------------------

def child(impl: str, kind: str, path: str, trace: bool) -> None:
    from processing import transform  # noqa: F401 - imports are not part of the measurement

    if impl == "duckdb":
        import duckdb  # noqa: F401 - nor is DuckDB's
    run = {"core": core, "naive": naive, "duckdb": duckdb_run}[impl]
    if trace:
        import tracemalloc
        tracemalloc.start()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    records, digest = run(kind, Path(path))
    seconds = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    if digest.startswith("file:"):          # DuckDB wrote a file: hash it, untimed
        digest = file_digest(Path(digest[len("file:"):]))
    print(json.dumps({"records": records, "seconds": seconds, "digest": digest,
                      "rss_kib": rss_after - rss_before, "peak": peak}))


def measure(impl: str, kind: str, path: Path, trace: bool) -> subprocess.Popen:
    args = [sys.executable, __file__, "--child", impl, kind, str(path)]
    return subprocess.Popen(args + (["--trace"] if trace else []), stdout=subprocess.PIPE,
                            text=True)


def result(child: subprocess.Popen | None) -> dict | None:
    if child is None:
        return None
    out, _ = child.communicate()
    if child.returncode:
        raise SystemExit(f"benchmark child failed with exit code {child.returncode}")
    return json.loads(out)


def mib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 2 ** 20:8.1f} MiB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--trace-rows", type=int, default=100_000,
                   help="rows for the tracemalloc runs (0: all of --rows)")
    p.add_argument("--no-tracemalloc", action="store_true", help="skip the tracemalloc runs")
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved core/DuckDB runs per input (0: no DuckDB)")
    p.add_argument("--child", nargs=3, metavar=("IMPL", "KIND", "PATH"), help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(*a.child, trace=a.trace)
        return

    t = time.perf_counter()
    paths = generate(a.rows)
    trace_rows = min(a.trace_rows or a.rows, a.rows)
    trace_paths = generate(trace_rows)
    print(f"inputs: {a.rows:,} rows (generated/reused in {time.perf_counter() - t:.1f}s); "
          f"tracemalloc over the first {trace_rows:,} rows")
    for kind, path in paths.items():
        print(f"\n{kind}: {path.name}, {path.stat().st_size / 2 ** 20:.1f} MiB")
        # The core runs alone; the slow traced naive child runs on the second core
        # beside the timed naive child, so the default run fits in ~3 minutes on 2 cores.
        peaks = {"core": None, "naive": None}
        figures = {}
        if not a.no_tracemalloc:
            peaks["core"] = result(measure("core", kind, trace_paths[kind], True))["peak"]
        figures["core"] = result(measure("core", kind, path, trace=False))
        naive_traced = None if a.no_tracemalloc else measure("naive", kind, trace_paths[kind],
                                                             True)
        figures["naive"] = result(measure("naive", kind, path, trace=False))
        if naive_traced is not None:
            peaks["naive"] = result(naive_traced)["peak"]
        for impl in ("core", "naive"):
            f = figures[impl]
            f["peak"] = peaks[impl]
            print(f"  {impl:6} {f['records'] / f['seconds']:>10,.0f} records/s "
                  f"({f['seconds']:5.1f}s)  tracemalloc peak {mib(f['peak'])}  "
                  f"ru_maxrss +{mib(f['rss_kib'] * 1024)}")
        c, n = figures["core"], figures["naive"]
        same = "identical output" if c["digest"] == n["digest"] else "OUTPUT DIFFERS"
        ratio = f"  ratio core/naive: speed {n['seconds'] / c['seconds']:.2f}x"
        if c["peak"] and n["peak"]:
            ratio += f", tracemalloc peak {c['peak'] / n['peak']:.4f}x"
        if n["rss_kib"] > 0:
            ratio += f", ru_maxrss growth {max(c['rss_kib'], 0) / n['rss_kib']:.4f}x"
        print(f"{ratio}  ({same})")
        if a.rounds:
            compare_duckdb(kind, path, a.rounds)


def compare_duckdb(kind: str, path: Path, rounds: int) -> None:
    times: dict[str, list[float]] = {"core": [], "duckdb": []}
    digests: dict[str, set[str]] = {"core": set(), "duckdb": set()}
    records = 0
    for _ in range(rounds):
        for impl in ("core", "duckdb"):
            f = result(measure(impl, kind, path, trace=False))
            times[impl].append(f["seconds"])
            digests[impl].add(f["digest"])
            records = f["records"]
    median = {impl: sorted(ts)[len(ts) // 2] for impl, ts in times.items()}
    for impl in ("core", "duckdb"):
        label = "duckdb single-thread" if impl == "duckdb" else "core"
        print(f"  {label:21} {records / median[impl]:>10,.0f} records/s (median of {rounds}: "
              + ", ".join(f"{t:.2f}s" for t in times[impl]) + ")")
    same = "identical output" if len(digests["core"] | digests["duckdb"]) == 1 \
        else "OUTPUT DIFFERS"
    print(f"  ratio core/duckdb: {median['duckdb'] / median['core']:.2f}x  ({same})")


if __name__ == "__main__":
    main()
