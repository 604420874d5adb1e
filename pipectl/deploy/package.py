"""Deterministic Lambda zips: the same source always gives the same bytes, so the same hash.

Each function's zip holds its entry module and the handler modules it imports
(transitively), so changing one handler changes only the hashes of the functions
that use it. Dependencies from handlers/requirements.txt are installed for the
Lambda platform once per content hash and cached; a zip gets only the installed
distributions its modules import from, and what those require.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipectl.errors import PipectlError, UsageError

# Zip entries carry timestamps; a fixed one (the zip format's earliest) keeps hashes stable.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
REQUIREMENTS = "requirements.txt"
# Installed beside requirements.txt only for a pipeline whose config asks for it
# (output.format: parquet brings pyarrow, about 50 MB zipped), so no other zip grows.
PARQUET_REQUIREMENTS = "requirements-parquet.txt"
_SKIP_PARTS = {"__pycache__", "tests", ".pytest_cache"}
_WHEEL_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
# Part of every source digest and dependency cache key: bump it when a change here makes
# other zips from the same sources, so deployed functions then show as differing.
PACKAGE_FORMAT = "2"
# Lambda's quotas for a .zip package: 50 MB uploaded through the API (ZipFile), 250 MB
# unzipped. A larger zip is staged in the pipeline's artifacts bucket (S3Bucket/S3Key),
# as SAM and Chalice ship large functions.
DIRECT_UPLOAD_BYTES = 50 * 1024 * 1024
UNZIPPED_BYTES = 250 * 1024 * 1024


@dataclass(frozen=True)
class Package:
    function: str
    zip_bytes: bytes
    files: tuple[str, ...]
    unzipped_bytes: int = 0

    @property
    def sha256(self) -> str:
        """As Lambda reports CodeSha256: base64 of the SHA-256 digest."""
        return base64.b64encode(hashlib.sha256(self.zip_bytes).digest()).decode()


def modules_for(handlers_dir: Path, entry: str) -> list[Path]:
    """The entry module and every handlers/ module it imports, directly or not."""
    return _walk(handlers_dir, entry)[0]


def _local_modules(handlers_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for handlers/'s modules and packages (zip-root layout)."""
    found = {}
    for path in handlers_dir.rglob("*.py"):
        parts = path.relative_to(handlers_dir).with_suffix("").parts
        if _SKIP_PARTS & set(parts) or any(not (handlers_dir.joinpath(*parts[:i]) /
                                                "__init__.py").is_file()
                                           for i in range(1, len(parts))):
            continue    # not importable from the zip root: a directory without __init__.py
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported_names(node: ast.AST, package: str) -> list[str]:
    """The dotted modules an import statement may load, with every parent package."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
            base = ".".join([*filter(None, anchor), *filter(None, [base])])
        # `from pkg import name`: name is a submodule or an attribute; both are tried.
        targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    else:
        return []
    return [".".join(t.split(".")[:i + 1]) for t in targets if t
            for i in range(len(t.split(".")))]


def _walk(handlers_dir: Path, entry: str) -> tuple[list[Path], set[str]]:
    """(the handlers/ modules entry needs, the other top-level modules they import)."""
    local = _local_modules(handlers_dir)
    if entry not in local:
        raise UsageError(f"{handlers_dir / (entry + '.py')} not found: the {entry} function's "
                         "handler (run `pipectl init` to write the default handlers)")
    local_tops = {name.split(".")[0] for name in local}
    found: dict[str, Path] = {}
    external: set[str] = set()
    pending = [entry]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = found[name] = local[name]
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            raise UsageError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
        for node in ast.walk(tree):
            names = _imported_names(node, package)
            pending += [n for n in names if n in local and n not in found]
            external |= {n.split(".")[0] for n in names
                         if n.split(".")[0] not in local_tops}
    return sorted(found.values()), external


def extras_for(config, kind: str) -> tuple[str, ...]:
    """The requirement files beyond requirements.txt that `kind`'s zip needs by config."""
    return (PARQUET_REQUIREMENTS,) if kind == "processor" and \
        config.output.format == "parquet" else ()


def _extra_files(handlers_dir: Path, extras: tuple[str, ...]) -> list[Path]:
    found = []
    for name in extras:
        path = handlers_dir / name
        if not path.is_file():
            raise UsageError(f"{path} not found: the config needs it (output.format: parquet "
                             "installs pyarrow from it; `pipectl init` in an empty directory "
                             "writes the default one)")
        found.append(path)
    return found


def source_digest(handlers_dir: Path, entry: str, *, runtime: str, architecture: str,
                  extras: tuple[str, ...] = ()) -> str:
    """SHA-256 (hex) of what build() makes the function's zip from, without building it.

    The handler modules the entry imports, handlers/requirements.txt's lines (the key
    the installed dependencies are cached by) and those of the extra requirement files
    the config adds, runtime, architecture and PACKAGE_FORMAT.
    Deploy tags each function with it, so `status` tells drift without installing the
    dependencies. Requirements are compared as written: an unpinned one that would
    install a newer version today still has the same digest.
    """
    digest = hashlib.sha256(f"pipectl-zip {PACKAGE_FORMAT} {runtime} {architecture}\n".encode())
    for path in _walk(handlers_dir, entry)[0]:
        content = path.read_bytes()
        digest.update(f"{_zip_name(handlers_dir, path)} {len(content)}\n".encode() + content)
    requirements = handlers_dir / REQUIREMENTS
    if requirements.is_file():
        digest.update("\n".join(["requirements", *_requirement_lines(requirements)]).encode())
    for extra in _extra_files(handlers_dir, extras):
        digest.update("\n".join(["", extra.name, *_requirement_lines(extra)]).encode())
    return digest.hexdigest()


def build(handlers_dir: Path, entry: str, *, runtime: str, architecture: str,
          cache_dir: Path, extras: tuple[str, ...] = ()) -> Package:
    """The function's zip; extras: requirement files beyond requirements.txt that this
    pipeline's config asks for (PARQUET_REQUIREMENTS)."""
    modules, imported = _walk(handlers_dir, entry)
    members = {_zip_name(handlers_dir, p): p.read_bytes() for p in modules}
    requirements = handlers_dir / REQUIREMENTS
    more = _extra_files(handlers_dir, extras)
    if requirements.is_file() and _requirement_lines(requirements) or more:
        deps = install_dependencies(requirements, runtime=runtime, architecture=architecture,
                                    cache_dir=cache_dir, extras=more)
        for name in _needed_files(deps, imported):
            path = deps / name
            if path.is_file() and not _SKIP_PARTS & set(Path(name).parts):
                members.setdefault(name, path.read_bytes())
    return Package(function=entry, zip_bytes=_zip(members), files=tuple(sorted(members)),
                   unzipped_bytes=sum(map(len, members.values())))


def _zip_name(handlers_dir: Path, module: Path) -> str:
    """Where a handlers/ module sits in the zip: the same path, from the zip's root."""
    return module.relative_to(handlers_dir).as_posix()


def needs_staging(built: Package) -> bool:
    """Past the direct-upload quota: the zip goes to S3 and Lambda reads it from there."""
    return len(built.zip_bytes) > DIRECT_UPLOAD_BYTES


def check_lambda_quotas(built: Package, *, can_stage: bool = False) -> None:
    """A package Lambda would refuse is a usage error before deploy calls anything.

    can_stage: the pipeline has an artifacts bucket, so a zip past 50 MB is uploaded
    there (Lambda's quota for a zip read from S3 is the 250 MB unzipped one)."""
    def mb(n: int) -> str:
        return f"{n / 1024 / 1024:.1f} MB"

    if built.unzipped_bytes > UNZIPPED_BYTES:
        raise UsageError(f"{built.function}: the package unzips to {mb(built.unzipped_bytes)}; "
                         f"Lambda allows {mb(UNZIPPED_BYTES)} unzipped: trim "
                         f"{REQUIREMENTS} or what the handler imports")
    if needs_staging(built) and not can_stage:
        raise UsageError(f"{built.function}: the zip is {mb(len(built.zip_bytes))}; Lambda takes "
                         f"{mb(DIRECT_UPLOAD_BYTES)} through its API, and this pipeline has no "
                         "artifacts bucket to stage it in (deploy makes one for output.format: "
                         f"parquet): trim {REQUIREMENTS} or what the handler imports")


@dataclass(frozen=True)
class _Distribution:
    top_level: frozenset[str]       # the names it can be imported by
    files: tuple[str, ...]          # relative to the install directory
    requires: frozenset[str]        # canonical names of the distributions it needs


def _needed_files(deps: Path, imported: set[str]) -> list[str]:
    """The files of the installed distributions imported from, and of what they require.

    A lean zip: the fetcher imports only yaml, so it does not carry Pillow's 8 MB.
    """
    distributions = _distributions(deps)
    pending = [name for name, d in distributions.items() if d.top_level & imported]
    chosen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in chosen or name not in distributions:
            continue        # a requirement whose marker left it uninstalled for this platform
        chosen.add(name)
        pending += distributions[name].requires
    return sorted(f for name in chosen for f in distributions[name].files)


def _distributions(deps: Path) -> dict[str, _Distribution]:
    found: dict[str, _Distribution] = {}
    claimed: set[str] = set()
    for info in sorted(deps.glob("*.dist-info")):
        record = info / "RECORD"
        # RECORD lists every installed file; entries outside the target (scripts: "../bin")
        # are not importable and stay out of the zip.
        files = tuple(line.split(",")[0] for line in record.read_text().splitlines()
                      if line and not line.startswith("..")) if record.is_file() else ()
        files = tuple(sorted({*files, *(p.relative_to(deps).as_posix()
                                        for p in info.rglob("*") if p.is_file())}))
        tops = {f.split("/")[0] for f in files}
        claimed |= tops
        found[_canonical(info.name.removesuffix(".dist-info").rsplit("-", 1)[0])] = _Distribution(
            top_level=frozenset(t.split(".")[0] for t in tops if not t.endswith(".dist-info")),
            files=files, requires=frozenset(_requires(info / "METADATA")))
    # Anything no RECORD claims (an install without metadata) counts as its own distribution.
    for path in sorted(deps.iterdir()):
        if path.name in claimed or path.name.startswith(".") or path.name.endswith(".dist-info"):
            continue
        files = ((path.name,) if path.is_file() else
                 tuple(p.relative_to(deps).as_posix() for p in sorted(path.rglob("*"))
                       if p.is_file()))
        found[f"unrecorded:{path.name}"] = _Distribution(
            top_level=frozenset({path.name.split(".")[0]}), files=files, requires=frozenset())
    return found


def _requires(metadata: Path) -> set[str]:
    # Requirements of extras ("; extra == ...") are not installed by a plain requirement.
    if not metadata.is_file():
        return set()
    return {_canonical(re.split(r"[\s;<>=!~\[(]", line.split(":", 1)[1].strip(), maxsplit=1)[0])
            for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines()
            if line.startswith("Requires-Dist:") and "extra ==" not in line}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16  # rw-r--r--: Lambda needs world-readable files
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, members[name])
    return buffer.getvalue()


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def lambda_platforms(runtime: str, architecture: str) -> list[str]:
    """The wheel platform tags a Lambda runtime loads, newest first.

    python3.12 and later run on Amazon Linux 2023 (glibc 2.34), older runtimes on
    Amazon Linux 2 (glibc 2.26); a wheel for glibc 2.X loads on any glibc >= 2.X.
    pip matches --platform tags literally (only manylinux2014 is widened, to 2010 and
    1), so each level is named: Pillow 13, say, ships manylinux_2_28 wheels only, and a
    manylinux2014-only install would quietly take an older release.
    """
    arch = _WHEEL_ARCH[architecture]
    glibc_minor = 34 if tuple(map(int, runtime.removeprefix("python").split("."))) >= (3, 12) \
        else 26
    return [*(f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 17, -1)),
            f"manylinux2014_{arch}"]


def dependency_key(requirement_lines: list[str], *, runtime: str, architecture: str) -> str:
    """What an installed dependency set is cached by: the same key, the same install."""
    return hashlib.sha256("\n".join([*requirement_lines, runtime.removeprefix("python"),
                                     architecture, PACKAGE_FORMAT]).encode()).hexdigest()[:16]


def install_dependencies(requirements: Path, *, runtime: str, architecture: str,
                         cache_dir: Path, extras: list[Path] | None = None) -> Path:
    """pip install for Lambda's platform (not this machine's), cached by content hash."""
    version = runtime.removeprefix("python")
    files = [p for p in (requirements, *(extras or ())) if p.is_file()]
    lines = [line for p in files for line in _requirement_lines(p)]
    if extras:      # a different set from requirements.txt's alone: its own cache entry
        lines.insert(0, "+ " + " ".join(p.name for p in extras))
    key = dependency_key(lines, runtime=runtime, architecture=architecture)
    target = cache_dir / f"deps-{key}"
    # Beside the directory, not in it (it would land in the zip); written last, so an
    # interrupted install is redone rather than half-used.
    complete = cache_dir / f"deps-{key}.complete"
    if complete.exists():
        return target
    platforms = lambda_platforms(runtime, architecture)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               *(arg for p in files for arg in ("--requirement", str(p))),
               "--target", str(target),
               *(arg for tag in platforms for arg in ("--platform", tag)),
               "--implementation", "cp",
               "--python-version", version, "--only-binary=:all:", "--upgrade"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        if "No matching distribution" in last:
            # Usually a release with no wheel for the runtime's glibc or architecture.
            last += (f" (no wheel for {runtime} on {platforms[0]} or older; pin a release "
                     "that ships one)")
        raise PipectlError(f"installing {requirements} for Lambda ({runtime}, {architecture}) "
                           f"failed: {last}")
    complete.write_text(key)
    return target
