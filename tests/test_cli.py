"""The installed ``kiln`` as a user runs it: usage errors, common options, runtime errors, quiet output."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
KILN = str(Path(sys.executable).parent / "kiln")
BROKEN = REPO_ROOT / "tests" / "definitions" / "broken"
# Lines the JVM, Ivy or Spark's logging print when they are not kept quiet.
NOISE = ("WARN", "Ivy", ":: resolving", "incubator", "log4j", "SparkContext", '"level"')


def kiln(*args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([KILN, *args], cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["validate", "--bogus"], "No such option: --bogus"),
        (["backfil"], "No such command 'backfil'"),
        (["backfill", "user_purchases", "--start", "2025-13-01", "--end", "2025-01-02"], "is not a date like"),
        (["backfill", "--start", "2025-01-01", "--end", "2025-01-02"], "name one or more views, or pass --all"),
    ],
)
def test_usage_errors_print_usage_and_exit_2_without_a_traceback(args: list[str], message: str) -> None:
    done = kiln(*args)
    assert done.returncode == 2, done.stderr
    assert "Usage: kiln" in done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_common_options_work_before_and_after_the_subcommand(tmp_path: Path) -> None:
    defs = tmp_path / "defs"
    defs.mkdir()
    shutil.copy(BROKEN / "bad_window.yaml", defs / "bad_window.yaml")
    for args in (["validate", "--defs", str(defs)], ["--defs", str(defs), "validate"]):
        done = kiln(*args)
        assert done.returncode == 1, done.stderr
        assert "bad_window.yaml:12: features[1].window: '7days' is not a whole number of days like '7d'" in done.stderr
        assert "Traceback" not in done.stderr
    after = kiln("--defs", "feature_defs", "validate", "--defs", str(defs))
    assert after.returncode == 1 and "bad_window.yaml" in after.stderr, "the option after the subcommand wins"


def test_each_command_documents_the_common_options() -> None:
    for command in ("validate", "backfill", "status", "report", "push", "get"):
        done = kiln(command, "--help")
        assert done.returncode == 0, done.stderr
        for option in ("--defs", "--warehouse", "--expectations", "--debug"):
            assert option in done.stdout, f"kiln {command} --help does not mention {option}"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = kiln("validate", "--debug", "--defs", str(tmp_path / "missing"))
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "definitions directory does not exist" in done.stderr


def test_tables_print_whole_when_output_is_not_a_terminal() -> None:
    done = kiln("list", env={"COLUMNS": "40"})
    assert done.returncode == 0, done.stderr
    assert "merchant_country_sales" in done.stdout
    assert "…" not in done.stdout
    assert "purchases_7d, spend_30d" in done.stdout


@pytest.mark.slow
@pytest.mark.spark  # `kiln backfill` in a subprocess
def test_a_runtime_error_names_the_view_file_line_and_field_after_a_quiet_jvm_start(tmp_path: Path) -> None:
    """A string timestamp column that holds a non-timestamp: one readable line, none of Spark's noise."""
    import pandas as pd

    warehouse, defs = tmp_path / "warehouse", tmp_path / "defs"
    (warehouse / "raw").mkdir(parents=True)
    defs.mkdir()
    pd.DataFrame({"user_id": [1, 2], "ts": ["2025-01-01 10:00:00", "yesterday"], "amount": [1.0, 2.0]}).to_csv(
        warehouse / "raw" / "events.csv", index=False
    )
    definition = {
        "name": "bad_times", "entity": {"name": "user", "keys": ["user_id"]},
        "source": {"path": "raw/events.csv", "format": "csv", "timestamp": "ts"}, "start": "2025-01-01",
        "features": [{"name": "n_7d", "agg": "count", "window": "7d"}],
    }
    (defs / "bad_times.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))
    done = kiln("backfill", "bad_times", "--start", "2025-01-01", "--end", "2025-01-02", "--no-validate",
                "--defs", str(defs), "--warehouse", str(warehouse), env={"KILN_SPARK_MASTER": "local[1]"})
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("error: bad_times: "), errors
    assert "bad_times.yaml:9: source.timestamp: column 'ts' holds 'yesterday', which is not a timestamp" in errors[0]
    noisy = [x for x in done.stderr.splitlines() + done.stdout.splitlines() if any(n in x for n in NOISE)]
    assert not noisy, f"Spark's own output reached the terminal: {noisy}"
    assert "Spark's own log: " in done.stderr

