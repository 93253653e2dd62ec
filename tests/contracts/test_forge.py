"""Solidity-level fuzz and invariant tests (tests/forge/*.t.sol) run by forge.

forge comes from the npm package ``@foundry-rs/forge`` (``npm ci``; CI runs it through
scripts/test.sh) and compiles offline with solc-js through scripts/solc-shim (foundry.toml).
The test runs ``forge test`` under the ``ci`` profile, with forge's output and cache in a
temporary directory, and fails when forge reports a failure, or when a suite or invariant it
should have run is missing from forge's report. It skips only when node_modules lacks forge.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORGE_BINARY = REPO / "node_modules" / "@foundry-rs" / "forge-linux-amd64" / "bin" / "forge"
FORGE_LAUNCHER = REPO / "node_modules" / ".bin" / "forge"

# Every suite and invariant that must run (a renamed or vanished test fails this test).
EXPECTED = {
    "tests/forge/LogAnchors.t.sol:LogAnchorsInvariantTest": {
        "invariant_anchoredSizeNeverShrinks()",
        "invariant_everyAnchorHasThresholdWitnesses()",
        "invariant_modelAgrees()",
        "invariant_witnessRules()",
    },
    "tests/forge/LogAnchors.t.sol:LogAnchorsSignatureFuzzTest": set(),
    "tests/forge/DatasetVouching.t.sol:DatasetVouchingInvariantTest": {
        "invariant_heldIsBondsPoolsOwed()",
        "invariant_vouchesAreLockedStake()",
    },
    "tests/forge/FLRewards.t.sol:FLRewardsInvariantTest": {
        "invariant_noClientPaidTwicePerRound()",
        "invariant_paidNeverExceedsFunded()",
        "invariant_poolCoversOutstandingClaims()",
        "invariant_stakeBooks()",
        "test_handlerReachesEveryPath()",
    },
    "tests/forge/LabelingMarket.t.sol:LabelingMarketInvariantTest": {
        "invariant_modelAgrees()",
        "invariant_poolsConserved()",
        "invariant_stakeBooks()",
    },
    "tests/forge/ModelRegistry.t.sol:ModelRegistryInvariantTest": {
        "invariant_deployedDigestIsRegistered()",
        "invariant_gateMatchesModel()",
        "invariant_modelAgrees()",
        "invariant_requirementDelay()",
    },
    "tests/forge/ModelRegistry.t.sol:RegistrySignatureFuzzTest": set(),
    "tests/forge/OracleJudge.t.sol:OracleJudgeInvariantTest": {
        "invariant_oneSlashPerFault()",
        "invariant_stakeBooks()",
    },
    "tests/forge/Settlement.t.sol:SettlementInvariantTest": {
        "invariant_bonusBooksBalance()",
        "invariant_escrowBooksBalance()",
        "invariant_modelAgrees()",
        "invariant_noPolicyPaysWithoutItsReport()",
        "invariant_roundsAreTheSignedOnes()",
    },
    "tests/forge/Settlement.t.sol:OracleSignatureFuzzTest": set(),
    "tests/forge/StakeManager.t.sol:StakeManagerInvariantTest": {
        "invariant_balanceMatches()",
        "invariant_booksBalance()",
        "invariant_modelAgrees()",
    },
}


def _forge() -> Path:
    # The platform binary when present (no node.js launcher in between), else the launcher.
    if FORGE_BINARY.exists():
        return FORGE_BINARY
    if FORGE_LAUNCHER.exists():
        return FORGE_LAUNCHER
    pytest.skip("forge is missing from node_modules: run `npm ci` in the repository root")


def _results(stdout: str) -> dict[str, dict[str, str]]:
    """forge's --json report: per suite, per test, its status ("Success", "Failure", ...)."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(f"forge printed no JSON report:\n{stdout[-4000:]}")
    report = json.loads(lines[-1])
    return {
        suite: {name: str(result["status"]) for name, result in body["test_results"].items()}
        for suite, body in report.items()
    }


@pytest.mark.slow
def test_forge_invariants_and_fuzz_hold(tmp_path: Path) -> None:
    forge = _forge()
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH: scripts/solc-shim needs it")
    env = {
        **os.environ,
        "FOUNDRY_PROFILE": "ci",
        "FOUNDRY_OUT": str(tmp_path / "out"),
        "FOUNDRY_CACHE_PATH": str(tmp_path / "cache"),
        # Counterexamples persisted by manual runs (build/forge/) are not replayed here.
        "FOUNDRY_FUZZ_FAILURE_PERSIST_DIR": str(tmp_path / "fuzz"),
        "FOUNDRY_INVARIANT_FAILURE_PERSIST_DIR": str(tmp_path / "invariant"),
        "FOUNDRY_TEST_FAILURES_FILE": str(tmp_path / "test-failures"),
        "NO_COLOR": "1",
    }
    proc = subprocess.run(
        [str(forge), "test", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = f"{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"forge test failed (exit {proc.returncode}):\n{output}"
    results = _results(proc.stdout)
    failed = [
        f"{suite}::{name} {status}"
        for suite, tests in results.items()
        for name, status in tests.items()
        if status != "Success"
    ]
    assert not failed, "forge tests did not pass:\n" + "\n".join(failed)
    for suite, invariants in EXPECTED.items():
        assert suite in results, f"forge did not run {suite}:\n{output}"
        assert results[suite], f"{suite} ran no tests"
        missing = invariants - set(results[suite])
        assert not missing, f"{suite} lacks {sorted(missing)}"


def test_solc_shim_reports_the_solc_js_version() -> None:
    _forge()  # the shim needs node_modules (solc) as much as forge does
    package = json.loads((REPO / "node_modules" / "solc" / "package.json").read_text())
    proc = subprocess.run(
        [str(REPO / "scripts" / "solc-shim"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = proc.stdout.splitlines()
    assert lines[0] == "solc, the solidity compiler commandline interface"
    assert lines[1].startswith(f"Version: {package['version']}+commit.")


def test_solc_shim_refuses_other_options() -> None:
    _forge()
    proc = subprocess.run(
        [str(REPO / "scripts" / "solc-shim"), "--bin", "contracts/LogAnchors.sol"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "unsupported option: --bin" in proc.stderr
