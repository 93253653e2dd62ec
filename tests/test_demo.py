"""The README's main job: ``ailedger demo`` runs every step for real and succeeds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

AILEDGER = Path(sys.executable).with_name("ailedger")


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [str(AILEDGER), "demo", "--dir", str(out), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True
    titles = [s["title"] for s in doc["steps"]]
    assert "prove an outside record is NOT in the dataset" in titles
    rejected = [s for s in doc["steps"] if s["expected_failure"]]
    assert rejected
    assert all(s["ok"] for s in rejected)
    assert (out / "membership-proof.json").is_file()


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    done = subprocess.run(
        [str(AILEDGER), "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 10
    assert "not empty" in done.stderr
