"""The Examples section that ends every --help (as `kubectl <cmd> --help` does), and the
shell completions that are cheap: targets from pipeline.yaml, function names.

Every line here is a command line that parses (tests/cli/test_app_cli.py runs each through
the real parser), so a renamed option cannot leave a stale example behind.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipectl.naming import FUNCTIONS

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": ("pipectl demo", "pipectl status -o json", "pipectl deploy --target prod --dry-run"),
    "init": ("pipectl init", "pipectl init my-pipeline"),
    "validate": ("pipectl validate", "pipectl validate -o json"),
    "deploy": ("pipectl deploy --dry-run", "pipectl deploy --yes",
               "pipectl deploy --dry-run --detailed-exitcode --target prod",
               "pipectl deploy --yes --purge"),
    "destroy": ("pipectl destroy --dry-run", "pipectl destroy --yes --purge --target local"),
    "ls": ("pipectl ls", "pipectl ls raw/incoming/", "pipectl ls s3://my-bucket/prefix/ -r"),
    "upload": ("pipectl upload orders.csv", "pipectl upload data/ --to raw/incoming/batch/",
               "pipectl upload a.json b.json -j 8 -o json"),
    "download": ("pipectl download processed/processed/ out/",
                 "pipectl download raw/failed/bad.json bad.json"),
    "query-info": ("pipectl query-info", "pipectl query-info -o json --target prod"),
    "status": ("pipectl status", "pipectl status --check --since 1h",
               "pipectl status --watch -o json"),
    "results": ("pipectl results --status FAILED --since 2h",
                "pipectl results --not-processor-version 3f2a9c1b7d4e -o json",
                "pipectl results incoming/orders.csv", "pipectl results -n 500 -o json"),
    "logs": ("pipectl logs", "pipectl logs archiver --since 2h",
             "pipectl logs fetcher --follow --filter ERROR",
             "pipectl logs --format json --since 1h"),
    "trace": ("pipectl trace incoming/orders.csv", "pipectl trace incoming/orders.csv -o json"),
    "invoke": ("pipectl events s3-put --key incoming/orders.csv --sqs > event.json",
               "pipectl invoke processor --event event.json"),
    "run": ("pipectl run", "pipectl run --until-idle --timeout 300"),
    "dev": ("pipectl dev", "pipectl dev --port 4600 --concurrency 4",
            "pipectl dev --state .pipectl/state", "pipectl dev --format json"),
    "demo": ("pipectl demo", "pipectl demo -o json"),
    "replay-dlq": ("pipectl replay-dlq --dry-run", "pipectl replay-dlq --max 10 --yes",
                   "pipectl replay-dlq --queue fetch --filter 'fetch/*.yaml'"),
    "reprocess": ("pipectl reprocess --not-current --dry-run",
                  "pipectl reprocess --status FAILED --since 1d --yes",
                  "pipectl reprocess --stranded --filter 'incoming/2024/*' --rate 50 --yes"),
    "reconcile": ("pipectl reconcile", "pipectl reconcile --stuck-after 1h -o json"),
    "archive": ("pipectl archive --dry-run", "pipectl archive --older-than 30d --yes",
                "pipectl archive --lifecycle"),
    "fetch": ("pipectl fetch https://api.example.com/v1/orders --records /data",
              "pipectl fetch https://api.example.com/users -H 'Accept: application/json'"),
    "events": ("pipectl events s3-put --key incoming/orders.csv",
               "pipectl events s3-put --key incoming/orders.csv --sqs"),
    "events s3-put": ("pipectl events s3-put --key 'incoming/my file.csv'",
                      "pipectl events s3-put --key incoming/orders.csv --size 2048 --sqs"),
}


def epilog(path: str) -> str | None:
    """The Examples section for a command path ("" the top level, "events s3-put"); \\b keeps
    click from rewrapping the lines. A command without examples yet gets none (and fails
    tests/cli/test_app_cli.py) rather than breaking the whole CLI."""
    if path not in EXAMPLES:
        return None
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in EXAMPLES[path])


def complete_targets(ctx, incomplete: str) -> list[str]:
    """Target names from pipeline.yaml (the --config given so far, or ./pipeline.yaml)."""
    from pipectl import config as config_module
    from pipectl.errors import PipectlError

    given = ctx.find_root().params.get("config") or os.environ.get("PIPECTL_CONFIG")
    try:
        loaded = config_module.load(config_module.find_config(Path(given) if given else None))
    except PipectlError:
        return []  # a broken pipeline.yaml completes nothing rather than failing the shell
    return [name for name in sorted(loaded.targets) if name.startswith(incomplete)]


def complete_functions(incomplete: str) -> list[str]:
    return [name for name in FUNCTIONS if name.startswith(incomplete)]


FUNCTION_HELP = f"the function: {', '.join(FUNCTIONS[:-1])} or {FUNCTIONS[-1]}"
