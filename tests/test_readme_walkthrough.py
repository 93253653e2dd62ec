"""The README is a walkthrough that runs: every ```bash block, in order, as written.

The blocks run as one bash script (``set -euo pipefail``, each command echoed) from the
repository's root, the way a reader who just ran ``bash scripts/setup.sh`` would: the first
block puts ``.venv/bin`` on the PATH and moves to a fresh directory. The only things the test
provides are what the README says the reader provides: an EVM node at ``$RPC`` (an anvil the
test starts) and a home directory of its own. The quick-start commands (```sh blocks) set up
the machine this test already runs on, so they are not run here.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from _anvil import Anvil

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


# A demo the walkthrough leaves to its own test module (which runs it through the CLI).
TESTED_ELSEWHERE = {
    "consortium": "tests/demos/test_consortium.py",
    "crop-insurance": "tests/demos/test_oracles.py",
    "safety-bonus": "tests/demos/test_oracles.py",
    "labeling": "tests/demos/test_labeling.py",
}
_SKIPPED = re.compile(rf"^ailedger demo ({'|'.join(map(re.escape, TESTED_ELSEWHERE))})\b.*$", re.M)


def readme_script() -> str:
    blocks = re.findall(r"^```bash\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    return "\n".join(blocks)


def walkthrough_script() -> str:
    """The README's script with the demos of :data:`TESTED_ELSEWHERE` replaced by a no-op."""
    return _SKIPPED.sub(lambda m: f": run by {TESTED_ELSEWHERE[m[1]]}: {m[0]!r}", readme_script())


def test_skipped_demos_are_run_by_their_own_tests() -> None:
    script = readme_script()
    for demo, module in TESTED_ELSEWHERE.items():
        assert re.search(rf"^ailedger demo {re.escape(demo)}\b", script, flags=re.M), demo
        assert f'"{demo}"' in (REPO / module).read_text(), (demo, module)
    skipped = walkthrough_script()
    assert not re.search(
        r"^ailedger demo (consortium|crop-insurance|safety-bonus|labeling)", skipped, flags=re.M
    )
    assert re.search(r"^ailedger demo samples", skipped, flags=re.M)


def test_the_walkthrough_covers_the_readme() -> None:
    script = readme_script()
    commands = re.findall(r"^\s*ailedger [a-z-]+", script, flags=re.M)
    assert len(commands) >= 60
    groups = ["fingerprint", "prove", "verify", "keys", "attest", "log", "chain", "anchor",
              "dataset", "model", "eval", "approve", "gate", "deploy", "rollback", "deprecate",
              "infer", "trace", "lineage", "audit", "integrations", "demo"]  # fmt: skip
    for group in groups:
        assert re.search(rf"^\s*ailedger {group}\b", script, flags=re.M), group
    assert "--rpc" in script


@pytest.mark.chain
def test_the_readme_runs_as_written(anvil_node: Anvil, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AILEDGER_")}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        TMPDIR=str(tmp_path),
        RPC=anvil_node.url,
        PS4="+ README: ",
        COLUMNS="200",
    )
    script = "set -euo pipefail\nset -x\n" + walkthrough_script()
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, (
        f"the README stopped (exit {done.returncode}):\n{done.stderr[-6000:]}\n"
        f"--- stdout (end) ---\n{done.stdout[-3000:]}"
    )
