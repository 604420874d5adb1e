"""A user's pipeline is a directory: pipeline.yaml plus the handlers it deploys."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from pipectl.config import CONFIG_FILE
from pipectl.errors import PipectlError, UsageError

_PACKAGE = Path(__file__).resolve().parent


def template_dir() -> Path:
    """The default pipeline: packaged in the wheel, or this checkout's own top level."""
    for candidate in (_PACKAGE / "template", _PACKAGE.parent):
        if (candidate / CONFIG_FILE).is_file() and (candidate / "handlers").is_dir():
            return candidate
    raise PipectlError("the default pipeline template is missing from this installation")


@dataclass(frozen=True)
class InitReport:
    directory: str
    written: list[str]


def init_project(directory: Path, *, force: bool = False) -> InitReport:
    source = template_dir()
    config = directory / CONFIG_FILE
    handlers = directory / "handlers"
    existing = [str(p) for p in (config, handlers) if p.exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already exist(s); use --force to overwrite")
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is a file, not a directory: give init a directory")
    written: list[str] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / CONFIG_FILE, config)
        written.append(str(config))
        for path in sorted((source / "handlers").rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            target = handlers / path.relative_to(source / "handlers")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            written.append(str(target))
    except OSError as exc:  # unwritable, a file in the way, a full disk: the user's to fix
        where = exc.filename or directory
        raise UsageError(f"cannot write {where}: {exc.strerror or exc}") from None
    return InitReport(directory=str(directory), written=written)
