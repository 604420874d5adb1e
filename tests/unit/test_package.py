"""Deterministic per-function zips: same source, same hash; only what a function imports."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import zipfile

import pytest

from pipectl.deploy import package
from pipectl.errors import PipectlError, UsageError

OPTIONS = {"runtime": "python3.12", "architecture": "x86_64"}


@pytest.fixture
def handlers(tmp_path):
    d = tmp_path / "handlers"
    d.mkdir()
    (d / "shared.py").write_text("VALUE = 1\n")
    (d / "alpha.py").write_text("import shared\n\ndef lambda_handler(e, c):\n    return 1\n")
    (d / "beta.py").write_text("from shared import VALUE\nimport yaml\n\n"
                               "def lambda_handler(e, c):\n    return VALUE\n")
    (d / "unused.py").write_text("X = 0\n")
    return d


@pytest.fixture
def cache(tmp_path, handlers):
    """A dependency set already built for these requirements, so no pip runs."""
    (handlers / "requirements.txt").write_text("# for beta\nPyYAML>=6\n")
    cache = tmp_path / "cache"
    key = package.dependency_key(["PyYAML>=6"], **OPTIONS)
    (cache / f"deps-{key}" / "yaml").mkdir(parents=True)
    (cache / f"deps-{key}" / "yaml" / "__init__.py").write_text("# yaml\n")
    (cache / f"deps-{key}.complete").write_text(key)
    return cache


def names_in(built: package.Package) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(built.zip_bytes)).namelist()


def test_same_source_gives_the_same_bytes_and_lambda_style_hash(handlers, cache):
    one = package.build(handlers, "alpha", cache_dir=cache, **OPTIONS)
    two = package.build(handlers, "alpha", cache_dir=cache, **OPTIONS)
    assert one.zip_bytes == two.zip_bytes
    assert len(one.sha256) == 44 and one.sha256.endswith("=")  # base64 SHA-256, as CodeSha256


def test_a_function_gets_its_module_and_what_it_imports_only(handlers, cache):
    assert names_in(package.build(handlers, "alpha", cache_dir=cache, **OPTIONS)) == [
        "alpha.py", "shared.py"]


def test_dependencies_go_only_to_functions_that_import_them(handlers, cache):
    beta = names_in(package.build(handlers, "beta", cache_dir=cache, **OPTIONS))
    assert beta == ["beta.py", "shared.py", "yaml/__init__.py"]
    assert "yaml/__init__.py" not in names_in(package.build(handlers, "alpha", cache_dir=cache,
                                                            **OPTIONS))


def _installed(deps, dist: str, files: dict[str, str], requires: tuple[str, ...] = ()) -> None:
    """A distribution as pip --target leaves it: its files, a RECORD, a METADATA."""
    info = deps / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    for name, text in files.items():
        (deps / name).parent.mkdir(parents=True, exist_ok=True)
        (deps / name).write_text(text)
    record = [f"{name},sha256=x,1" for name in files] + [f"{info.name}/RECORD,,",
                                                          f"{info.name}/METADATA,,",
                                                          "../../bin/tool,sha256=x,1"]
    (info / "RECORD").write_text("\n".join(record) + "\n")
    (info / "METADATA").write_text(f"Name: {dist}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires))


def test_a_zip_gets_only_the_distributions_it_imports_and_what_they_require(handlers, tmp_path):
    # given three installed distributions: one imported under another name than its
    # own, one that requires a fourth, and one with a requirement only for an extra
    (handlers / "requirements.txt").write_text("PyYAML\nPillow\nrich-thing\n")
    (handlers / "gamma.py").write_text("import PIL.Image\nfrom rich_thing import x\n")
    cache = tmp_path / "cache"
    key = package.dependency_key(["PyYAML", "Pillow", "rich-thing"], **OPTIONS)
    deps = cache / f"deps-{key}"
    _installed(deps, "pyyaml", {"yaml/__init__.py": "", "_yaml/__init__.py": ""})
    _installed(deps, "pillow", {"PIL/__init__.py": "", "PIL/Image.py": "",
                                "pillow.libs/libjpeg.so": ""},
               requires=('olefile; extra == "fpx"',))
    _installed(deps, "rich_thing", {"rich_thing.py": ""}, requires=("Needed.Lib>=1",))
    _installed(deps, "needed_lib", {"needed_lib/__init__.py": ""})
    _installed(deps, "olefile", {"olefile.py": ""})
    (cache / f"deps-{key}.complete").write_text(key)

    # when
    beta = names_in(package.build(handlers, "beta", cache_dir=cache, **OPTIONS))
    gamma = names_in(package.build(handlers, "gamma", cache_dir=cache, **OPTIONS))

    # then beta (import yaml) carries PyYAML alone; gamma carries Pillow and rich_thing
    # with the library rich_thing requires, but not olefile (only Pillow's "fpx" extra)
    assert [n for n in beta if not n.endswith(".py") or "/" in n] == [
        "_yaml/__init__.py", "pyyaml-1.0.dist-info/METADATA", "pyyaml-1.0.dist-info/RECORD",
        "yaml/__init__.py"]
    assert {n.split("/")[0] for n in gamma} == {
        "gamma.py", "PIL", "pillow.libs", "pillow-1.0.dist-info", "rich_thing.py",
        "rich_thing-1.0.dist-info", "needed_lib", "needed_lib-1.0.dist-info"}


def test_changing_one_module_changes_exactly_the_functions_that_use_it(handlers, cache):
    before = {f: package.build(handlers, f, cache_dir=cache, **OPTIONS).sha256
              for f in ("alpha", "beta")}
    (handlers / "alpha.py").write_text((handlers / "alpha.py").read_text() + "# changed\n")
    after = {f: package.build(handlers, f, cache_dir=cache, **OPTIONS).sha256
             for f in ("alpha", "beta")}
    assert after["alpha"] != before["alpha"] and after["beta"] == before["beta"]
    (handlers / "shared.py").write_text("VALUE = 2\n")
    again = {f: package.build(handlers, f, cache_dir=cache, **OPTIONS).sha256
             for f in ("alpha", "beta")}
    assert again["alpha"] != after["alpha"] and again["beta"] != after["beta"]


def test_entries_have_fixed_times_and_readable_permissions(handlers, cache):
    archive = zipfile.ZipFile(io.BytesIO(package.build(handlers, "alpha", cache_dir=cache,
                                                       **OPTIONS).zip_bytes))
    for info in archive.infolist():
        assert info.date_time == package.FIXED_TIME
        assert (info.external_attr >> 16) & 0o444 == 0o444


def test_a_missing_handler_or_a_syntax_error_is_a_clear_usage_error(handlers, cache):
    with pytest.raises(UsageError, match="gamma.py not found"):
        package.build(handlers, "gamma", cache_dir=cache, **OPTIONS)
    (handlers / "alpha.py").write_text("def broken(:\n")
    with pytest.raises(UsageError, match=r"alpha.py:1: syntax error"):
        package.build(handlers, "alpha", cache_dir=cache, **OPTIONS)


def test_the_source_digest_changes_with_what_a_zip_is_built_from_and_nothing_else(handlers,
                                                                                cache):
    def digests(**options):
        return {f: package.source_digest(handlers, f, **{**OPTIONS, **options})
                for f in ("alpha", "beta")}

    first = digests()
    assert digests() == first and len(first["alpha"]) == 64
    (handlers / "unused.py").write_text("X = 1\n")                 # imported by neither
    assert digests() == first
    (handlers / "alpha.py").write_text((handlers / "alpha.py").read_text() + "# changed\n")
    second = digests()
    assert second["alpha"] != first["alpha"] and second["beta"] == first["beta"]
    (handlers / "requirements.txt").write_text("PyYAML>=6.0.1\n")
    third = digests()
    assert third["alpha"] != second["alpha"] and third["beta"] != second["beta"]
    (handlers / "requirements.txt").write_text("# a comment is not a requirement\nPyYAML>=6.0.1\n")
    assert digests() == third
    assert digests(architecture="arm64")["alpha"] != third["alpha"]
    assert digests(runtime="python3.13")["alpha"] != third["alpha"]


def test_equal_source_digests_build_equal_zips(handlers, cache, tmp_path):
    copy = tmp_path / "elsewhere" / "handlers"
    copy.parent.mkdir()
    shutil.copytree(handlers, copy)
    for f in ("alpha", "beta"):
        assert package.source_digest(copy, f, **OPTIONS) == package.source_digest(
            handlers, f, **OPTIONS)
        assert package.build(copy, f, cache_dir=cache, **OPTIONS).sha256 == package.build(
            handlers, f, cache_dir=cache, **OPTIONS).sha256


def test_wheels_are_chosen_for_the_glibc_of_the_runtimes_amazon_linux():
    # python3.12+ run on Amazon Linux 2023 (glibc 2.34), older runtimes on Amazon Linux 2
    # (glibc 2.26); Lambda's arm64 is aarch64 in wheel tags
    al2023 = package.lambda_platforms("python3.12", "x86_64")
    al2 = package.lambda_platforms("python3.11", "arm64")

    assert al2023[0] == "manylinux_2_34_x86_64" and al2023[-1] == "manylinux2014_x86_64"
    assert "manylinux_2_28_x86_64" in al2023
    assert al2[0] == "manylinux_2_26_aarch64" and al2[-1] == "manylinux2014_aarch64"
    assert not {"manylinux_2_27_aarch64", "manylinux_2_28_aarch64"} & set(al2)


def test_the_dependency_install_is_cached_per_runtime_and_architecture():
    lines = ["PyYAML==6.0.4"]
    keys = {package.dependency_key(lines, runtime=r, architecture=a)
            for r in ("python3.11", "python3.12") for a in ("x86_64", "arm64")}
    assert len(keys) == 4
    assert package.dependency_key(lines, runtime="python3.12", architecture="x86_64") == \
        package.dependency_key(list(lines), runtime="python3.12", architecture="x86_64")


def test_a_release_without_a_wheel_for_the_runtime_says_which_platform(handlers, tmp_path,
                                                                       monkeypatch):
    # given pip finds no wheel of the pinned release for python3.11 (Amazon Linux 2)
    (handlers / "requirements.txt").write_text("Pillow==13.0.0\n")
    calls = []

    def pip(command, **_):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", (
            "ERROR: Could not find a version that satisfies the requirement Pillow==13.0.0\n"
            "ERROR: No matching distribution found for Pillow==13.0.0\n"))

    monkeypatch.setattr(package.subprocess, "run", pip)

    # when
    with pytest.raises(PipectlError) as raised:
        package.build(handlers, "alpha", runtime="python3.11", architecture="arm64",
                      cache_dir=tmp_path / "cache")

    # then one line names the release, the runtime and the newest platform it loads
    assert str(raised.value).endswith(
        "failed: ERROR: No matching distribution found for Pillow==13.0.0 (no wheel for "
        "python3.11 on manylinux_2_26_aarch64 or older; pin a release that ships one)")
    assert calls[0][calls[0].index("--platform") + 1] == "manylinux_2_26_aarch64"
    assert not list((tmp_path / "cache").glob("*.complete"))     # nothing cached as done



@pytest.mark.parametrize("quota, expected", [
    ("DIRECT_UPLOAD_BYTES", "beta: the zip is 1.5 MB; Lambda takes 1.0 MB through its API, "
                            "and this pipeline has no artifacts bucket to stage it in (deploy "
                            "makes one for output.format: parquet): trim requirements.txt or "
                            "what the handler imports"),
    ("UNZIPPED_BYTES", "beta: the package unzips to 1.5 MB; Lambda allows 1.0 MB unzipped: "
                       "trim requirements.txt or what the handler imports"),
])
def test_a_package_past_a_lambda_quota_is_refused_before_deploy(handlers, cache, monkeypatch,
                                                                 quota, expected):
    # given beta's dependency carries 1.5 MB that does not compress, and a 1 MB quota
    (next(cache.glob("deps-*/yaml")) / "data.bin").write_bytes(
        random.Random(7).randbytes(3 * 2 ** 19))
    built = package.build(handlers, "beta", cache_dir=cache, **OPTIONS)
    package.check_lambda_quotas(built)                      # within Lambda's own quotas
    monkeypatch.setattr(package, quota, 2 ** 20)
    monkeypatch.setattr(package, "UNZIPPED_BYTES" if quota == "DIRECT_UPLOAD_BYTES"
                        else "DIRECT_UPLOAD_BYTES", 2 ** 30)

    # when / then
    with pytest.raises(UsageError) as raised:
        package.check_lambda_quotas(built)
    assert str(raised.value) == expected
