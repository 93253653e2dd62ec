"""``ailedger fingerprint model``: output, cache, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from ailedger.cli import main
from ailedger.demos.samples import SAMPLE_MODEL
from ailedger.fingerprint.model import fingerprint_model

EXAMPLE = SAMPLE_MODEL
AILEDGER = Path(sys.executable).parent / "ailedger"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(["fingerprint", "model", *args])
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_json_manifest_matches_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, str(EXAMPLE), "--json", "--no-cache")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    fp = fingerprint_model(EXAMPLE)
    assert doc == json.loads(json.dumps(fp.to_dict()))
    assert doc["hashing"] == "sha256"
    assert [r["name"] for r in doc["resources"]] == [
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    assert doc["tensors"]["count"] == 9
    assert "leaves" not in doc["tensors"]


def test_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, str(EXAMPLE), "-a", "blake3", "--shard-size", "1024", "--no-tensors", "--json"
    )
    doc = json.loads(out)
    assert code == 0
    assert doc["hashing"] == "blake3-sharded-1024"
    assert doc["tensors"] is None
    assert "model.safetensors:1024:2048" in [r["name"] for r in doc["resources"]]
    code, out, _ = _run(capsys, str(EXAMPLE), "--json", "--leaves", "--ignore", "README.md")
    doc = json.loads(out)
    assert len(doc["tensors"]["leaves"]) == 9
    assert "README.md" not in [r["name"] for r in doc["resources"]]


def test_human_summary_and_cache_file(capsys: pytest.CaptureFixture[str], cache_home: Path) -> None:
    code, out, _ = _run(capsys, str(EXAMPLE))
    assert code == 0
    assert "subject sha256" in out
    assert fingerprint_model(EXAMPLE).subject_digest.hex() in out
    assert "9 tensors in 1 safetensors files" in out
    assert (cache_home / "ailedger" / "stat-cache.sqlite").is_file()


def test_second_run_uses_the_cache(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "w.safetensors").write_bytes(save({"w": np.ones((4, 4), np.float32)}))
    (model / "config.json").write_text("{}")
    old = time.time() - 3600
    for p in model.iterdir():
        os.utime(p, (old, old))
    _run(capsys, str(model))
    code, out, _ = _run(capsys, str(model))
    assert code == 0
    assert "3 digests from cache, 0 bytes read" in out  # two files and one tensor list
    code, out, _ = _run(capsys, str(model), "--no-cache")
    assert "0 digests from cache" in out


@pytest.mark.parametrize(
    ("setup", "code", "message"),
    [
        ("missing", 4, "does not exist"),
        ("loop", 3, "symlink loop"),
        ("lying", 3, "w.safetensors: header length"),
        ("truncated", 3, "w.safetensors: tensor 'w' ends at 64, beyond the 10 data bytes"),
    ],
)
def test_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, setup: str, code: int, message: str
) -> None:
    model = tmp_path / "m"
    model.mkdir()
    blob = save({"w": np.ones((4, 4), np.float32)})
    if setup == "loop":
        (model / "a").symlink_to(model / "b")
        (model / "b").symlink_to(model / "a")
    elif setup == "lying":
        (model / "w.safetensors").write_bytes(b"\xff" * 8 + blob[8:])
    elif setup == "truncated":
        (model / "w.safetensors").write_bytes(blob[:-54])
    target = model if setup != "missing" else tmp_path / "nope"
    got, out, err = _run(capsys, str(target))
    assert got == code
    assert out == ""
    assert message in err
    assert err.count("\n") <= 2  # one error line (and perhaps a hint)


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, str(EXAMPLE), "--algorithm", "md5")[0] == 2
    assert _run(capsys, str(EXAMPLE), "--shard-size", "0")[0] == 2


@pytest.mark.slow  # two interpreter start-ups
def test_entry_point_has_quiet_stderr_when_not_a_terminal(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run(
        [str(AILEDGER), "fingerprint", "model", str(EXAMPLE), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0
    assert done.stderr == ""
    assert json.loads(done.stdout)["subject"]["name"] == "model"
    bad = subprocess.run(
        [str(AILEDGER), "fingerprint", "model", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 4
    assert bad.stderr.startswith("error: ")


def test_sample_model_readme_commands_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (EXAMPLE / "README.md").read_text()
    commands = [
        line.split()[1:] for line in readme.splitlines() if line.startswith(".venv/bin/ailedger ")
    ]
    assert len(commands) == 2
    monkeypatch.chdir(EXAMPLE.parents[4])
    for argv in commands:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    assert fingerprint_model(EXAMPLE).subject_digest.hex() in out
