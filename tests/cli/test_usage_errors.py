"""Usage errors are one line and a hint (exit 2), as the README promises, not Typer's box."""

from __future__ import annotations

import pytest

from _cli import run, run_main, run_process


@pytest.mark.parametrize(
    ("args", "needle", "hint"),
    [
        (["verify", "proof"], "Missing argument", "ailedger verify proof -h"),
        (["nosuch"], "No such command 'nosuch'", "ailedger -h"),
        (["prove", "--index", "x", "data.csv"], "Invalid value for '--index'", "ailedger prove -h"),
        (["log", "--bogus"], "No such option: --bogus", "ailedger log -h"),
        (["keys", "new"], "Missing argument", "ailedger keys new -h"),
    ],
)
def test_a_usage_error_is_one_line_and_a_hint(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str, hint: str
) -> None:
    code, out, err = run_main(capsys, *args)
    assert code == 2
    assert not out
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("error: ")
    assert needle in lines[0]
    assert lines[1] == f"hint: see `{hint}`"
    assert "╭" not in err


def test_a_bare_group_prints_its_help_and_exits_2() -> None:
    result = run(["keys"])
    assert result.exit_code == 2
    assert "new" in result.stdout
    assert "error" not in result.output


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["verify", "proof", "-h"], ["--version"]])
def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = run_main(capsys, *args)
    assert code == 0
    assert out
    assert not err


def test_the_installed_script_too() -> None:
    done = run_process("verify", "proof")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: Missing argument 'proof_file'.",
        "hint: see `ailedger verify proof -h`",
    ]
