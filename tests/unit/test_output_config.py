"""output: in pipeline.yaml (issue 18): validated like every section, and what it deploys."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipectl import config
from pipectl.deploy import desired, package
from pipectl.errors import ConfigError, UsageError
from pipectl.naming import Names
from pipectl.output_format import COMPRESSIONS, FORMATS, PARTITIONS, Output

BASE = "pipeline: orders\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse(BASE + text, Path("pipeline.yaml"))
    return caught.value.problems


def test_no_output_section_is_todays_json_lines_and_deploys_no_variable():
    cfg = config.parse(BASE, Path("pipeline.yaml"))
    assert cfg.output == Output() and cfg.output.format == "jsonl"
    env = desired.function_environment(cfg, Names(cfg, "123456789012", "us-east-1"),
                                       "processor")
    assert not [name for name in env if name.startswith("OUTPUT_")]
    assert not desired.stages_code(cfg)
    assert package.extras_for(cfg, "processor") == ()


def test_parquet_reaches_the_processor_with_hive_partitions_by_default():
    cfg = config.parse(BASE + "output:\n  format: parquet\n  compression: snappy\n"
                       "  row_group_rows: 5000\n", Path("pipeline.yaml"))
    env = desired.function_environment(cfg, Names(cfg, "123456789012", "us-east-1"),
                                       "processor")
    assert {k: v for k, v in env.items() if k.startswith("OUTPUT_")} == {
        "OUTPUT_FORMAT": "parquet", "OUTPUT_COMPRESSION": "snappy",
        "OUTPUT_ROW_GROUP_ROWS": "5000", "OUTPUT_PARTITION_BY": "dt"}
    assert cfg.output.describe() == "parquet (snappy, 5,000 rows a row group) under dt=YYYY-MM-DD/"
    # only the processor's zip gets pyarrow, and the pipeline gets an artifacts bucket
    assert package.extras_for(cfg, "processor") == (package.PARQUET_REQUIREMENTS,)
    assert package.extras_for(cfg, "fetcher") == ()
    assert desired.stages_code(cfg)


def test_every_bad_output_setting_has_its_line_and_path():
    found = problems("output:\n  format: csv\n  compression: lz4\n  row_group_rows: 5\n"
                     "  partition_by: hour\n  colour: red\n")
    assert found == [
        "pipeline.yaml:3: output.format: must be one of jsonl, jsonl.gz, parquet (got 'csv')",
        "pipeline.yaml:4: output.compression: must be one of zstd, snappy, gzip (got 'lz4')",
        "pipeline.yaml:5: output.row_group_rows: must be between 100 and 1000000 (got 5)",
        "pipeline.yaml:6: output.partition_by: must be one of date, dt, year/month/day "
        "(got 'hour')",
        "pipeline.yaml:7: output.colour: unknown setting (known: compression, format, "
        "partition_by, row_group_rows)"]


def test_parquet_settings_on_json_lines_are_refused_not_ignored():
    found = problems("output:\n  format: jsonl.gz\n  compression: zstd\n")
    assert found == ["pipeline.yaml:4: output.compression: applies to format: parquet only "
                     "(the format is jsonl.gz)"]
    assert problems("output:\n  row_group_rows: 1000\n") == [
        "pipeline.yaml:3: output.row_group_rows: applies to format: parquet only (the format "
        "is jsonl)"]
    assert problems("output: parquet\n") == ["pipeline.yaml:2: output: must be a mapping"]


@given(st.sampled_from(FORMATS), st.sampled_from(COMPRESSIONS),
       st.integers(100, 1_000_000), st.sampled_from((None, *PARTITIONS)))
def test_any_valid_output_round_trips_to_the_handler(fmt, compression, rows, partition):
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "handlers"))
    from processing.output_format import OutputFormat

    lines = [f"  format: {fmt}"]
    if fmt == "parquet":
        lines += [f"  compression: {compression}", f"  row_group_rows: {rows}"]
    if partition:
        lines.append(f"  partition_by: {partition}")
    cfg = config.parse(BASE + "output:\n" + "\n".join(lines) + "\n", Path("pipeline.yaml"))
    handler = OutputFormat.from_env(cfg.output.environment())
    assert (handler.format, handler.partition) == (cfg.output.format, cfg.output.partition)
    assert handler.extension == cfg.output.extension
    if fmt == "parquet":
        assert (handler.compression, handler.row_group_rows) == (compression, rows)


def test_a_parquet_pipeline_needs_its_requirements_file(tmp_path):
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "processor.py").write_text("X = 1\n")
    plain = package.source_digest(handlers, "processor", runtime="python3.12",
                                  architecture="x86_64")
    with pytest.raises(UsageError, match="requirements-parquet.txt not found"):
        package.source_digest(handlers, "processor", runtime="python3.12",
                              architecture="x86_64", extras=(package.PARQUET_REQUIREMENTS,))
    (handlers / package.PARQUET_REQUIREMENTS).write_text("pyarrow==26.0.1\n")
    parquet = package.source_digest(handlers, "processor", runtime="python3.12",
                                    architecture="x86_64",
                                    extras=(package.PARQUET_REQUIREMENTS,))
    # the extra file changes the digest of the pipeline that asks for it, and no other's
    assert parquet != plain
    assert package.source_digest(handlers, "processor", runtime="python3.12",
                                 architecture="x86_64") == plain


def test_a_zip_past_the_direct_upload_quota_is_staged_only_with_an_artifacts_bucket():
    big = package.Package("processor", b"x" * (package.DIRECT_UPLOAD_BYTES + 1), ())
    assert package.needs_staging(big)
    with pytest.raises(UsageError, match="no artifacts bucket"):
        package.check_lambda_quotas(big)
    package.check_lambda_quotas(big, can_stage=True)


def test_the_artifacts_bucket_is_private_like_the_others():
    cfg = config.parse(BASE + "output:\n  format: parquet\n", Path("pipeline.yaml"))
    names = Names(cfg, "123456789012", "us-east-1")
    found = [r for r in desired.resources(cfg, names, tls_only=True, local_runtime=True,
                                          cache_dir=None) if getattr(r, "role", "") == "artifacts"]
    assert len(found) == 1
    bucket = found[0]
    assert bucket.name == "orders-dev-artifacts-123456789012"
    assert (bucket.block_public_access, bucket.encryption, bucket.ownership,
            bucket.versioning) == (True, "AES256", "BucketOwnerEnforced", "Enabled")
    assert desired.TLS_STATEMENT in bucket.policy_statements
