"""Dead-letter replay against a moto server: pipectl's batched replay vs a naive loop.

    python bench/replay.py [--messages 1000] [--naive-messages 100]

1. pipectl replays all N dead letters: messages/s, API calls, calls per message.
2. Side by side at equal depth (moto's SQS slows as a queue grows, see DESIGN.md, so
   only a comparison at the same depth means anything): the DLQ is refilled to N and
   each method moves M messages from it into an emptied target queue, pipectl with
   --max M, then the naive loop (receive 1, send 1, delete 1) after topping the DLQ
   back up to N. The naive loop is sampled (M, not N) because at this depth it needs
   about a second per message on moto.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote_plus

import boto3
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipectl.ops import replay as replay_ops  # noqa: E402
from pipectl.ops.dead_letters import ReplayOptions  # noqa: E402


def body(i: int) -> str:
    key = quote_plus(f"incoming/bench file {i}.csv", safe="/")
    return json.dumps({"Records": [{"eventSource": "aws:s3", "s3": {
        "bucket": {"name": "raw"}, "object": {"key": key, "size": 100}}}]})


def fill(sqs, url: str, count: int, start: int = 0) -> None:
    for first in range(start, start + count, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": body(i)}
            for i in range(first, min(first + 10, start + count))])


def depth(sqs, url: str) -> int:
    return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])


def naive(sqs, dlq: str, target: str, count: int) -> int:
    moved = 0
    while moved < count:
        messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=1,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            break
        sqs.send_message(QueueUrl=target, MessageBody=messages[0]["Body"])
        sqs.delete_message(QueueUrl=dlq, ReceiptHandle=messages[0]["ReceiptHandle"])
        moved += 1
    return moved


def measured(sqs, run) -> tuple[int, float, int]:
    calls: Counter = Counter()

    def count(model, **_):
        calls.update([model.name])

    sqs.meta.events.register("before-call", count)
    started = time.perf_counter()
    try:
        moved = run()
    finally:
        sqs.meta.events.unregister("before-call", count)
    return moved, time.perf_counter() - started, sum(calls.values())


def line(name: str, moved: int, seconds: float, calls: int) -> float:
    rate = moved / seconds
    print(f"  {name:<22} moved {moved:>5} in {seconds:7.1f} s  {rate:7.1f} msg/s  "
          f"{calls:>5} calls  {calls / moved:.3f} calls/msg")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--naive-messages", type=int, default=100)
    args = parser.parse_args()
    n, m = args.messages, args.naive_messages

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    sqs = boto3.client("sqs", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        dlq = sqs.create_queue(QueueName="bench-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        queue = sqs.create_queue(QueueName="bench", Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})})["QueueUrl"]

        print(f"moto server {host}:{port}; filling the DLQ with {n} S3-event messages")
        fill(sqs, dlq, n)
        print(f"1. pipectl replays all {n} (depth {n} -> 0)")
        moved, seconds, calls = measured(sqs, lambda: replay_ops.move(
            sqs, replay_ops.locate(sqs, "bench-dlq", "bench"), ReplayOptions()).moved)
        line("pipectl replay-dlq", moved, seconds, calls)
        assert depth(sqs, dlq) == 0 and depth(sqs, queue) == n

        print(f"2. side by side: {m} messages each from a DLQ {n} deep into an empty queue")
        # Fresh, empty targets (moto, like SQS, allows one PurgeQueue a minute).
        fast_target, slow_target = (sqs.create_queue(QueueName=q)["QueueUrl"]
                                    for q in ("bench-pipectl", "bench-naive"))
        fill(sqs, dlq, n)
        moved, seconds, calls = measured(sqs, lambda: replay_ops.move(
            sqs, replay_ops.locate(sqs, "bench-dlq", "bench", to="bench-pipectl"),
            ReplayOptions(max_messages=m)).moved)
        fast = line(f"pipectl --max {m}", moved, seconds, calls)
        assert depth(sqs, fast_target) == m
        fill(sqs, dlq, m, start=n)  # back to n deep
        moved, seconds, calls = measured(sqs, lambda: naive(sqs, dlq, slow_target, m))
        slow = line("naive 1-at-a-time", moved, seconds, calls)
        print(f"  speed ratio pipectl / naive: {fast / slow:.1f}x")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
