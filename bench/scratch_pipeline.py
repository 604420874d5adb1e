"""A moto server on a free port and a scratch copy of this repository's pipeline to deploy
into it, both gone afterwards: what the reconcile and reprocess benchmarks start from."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def scratch_pipeline(prefix: str) -> Iterator[tuple[str, Path]]:
    """(endpoint URL, directory holding pipeline.yaml and handlers/). A copy, because deploy
    builds its zips beside pipeline.yaml; patch moto before entering, as the emulator does."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        shutil.copyfile(ROOT / "pipeline.yaml", scratch / "pipeline.yaml")
        shutil.copytree(ROOT / "handlers", scratch / "handlers",
                        ignore=shutil.ignore_patterns("__pycache__"))
        yield f"http://{host}:{port}", scratch
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
