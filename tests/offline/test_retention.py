"""The retention setting and the version check, without Spark: a Delta log written as files by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from featurekiln.errors import SpecError
from featurekiln.offline.delta_log import DeltaLog
from featurekiln.offline.retention import RetentionError, check_version_kept, replaced_at, retain_days
from featurekiln.settings import Settings

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def write_log(table: Path, times: list[datetime]) -> DeltaLog:
    """A Delta log with one commit per time (only ``commitInfo``, which is what the check reads)."""
    folder = table / "_delta_log"
    folder.mkdir(parents=True)
    for version, at in enumerate(times):
        info = {"commitInfo": {"timestamp": int(at.timestamp() * 1000), "operation": "WRITE"}}
        (folder / f"{version:020d}.json").write_text(json.dumps(info) + "\n")
    return DeltaLog.of(str(table), Settings())


def test_a_version_is_judged_by_when_it_was_replaced(tmp_path: Path) -> None:
    log = write_log(tmp_path / "t", [NOW - timedelta(days=90), NOW - timedelta(days=31), NOW - timedelta(days=29)])
    assert replaced_at(log, 0) == NOW - timedelta(days=31)
    assert replaced_at(log, 2) is None
    check_version_kept(log, "v", 1, 30, NOW)  # replaced 29 days ago
    check_version_kept(log, "v", 2, 0, NOW)  # the latest version is always kept
    with pytest.raises(RetentionError, match=r"version 0 .* replaced on .* retention of 30 day\(s\) \(KILN_RETAIN_DAYS"):
        check_version_kept(log, "v", 0, 30, NOW)


def test_the_setting_wins_over_kiln_yaml_which_wins_over_the_default(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    defs = tmp_path / "defs"
    defs.mkdir()
    assert retain_days(Settings(defs_dir=defs)) == 30
    (tmp_path / "kiln.yaml").write_text("online_store: sqlite:///online.db\nretain_days: 7\n")
    assert retain_days(Settings(defs_dir=defs)) == 7
    assert retain_days(Settings(defs_dir=defs, retain_days=2)) == 2
    monkeypatch.setenv("KILN_RETAIN_DAYS", "3")
    assert retain_days(Settings.from_env(defs_dir=defs)) == 3
    (tmp_path / "kiln.yaml").write_text("online_store: sqlite:///online.db\nretain_days: soon\n")
    with pytest.raises(SpecError, match=r"kiln.yaml:2: retain_days: must be a whole number of days"):
        retain_days(Settings(defs_dir=defs))
    monkeypatch.setenv("KILN_RETAIN_DAYS", "-1")
    with pytest.raises(ValueError, match="KILN_RETAIN_DAYS"):
        Settings.from_env()
