"""Every custom error of the shipped contracts has a message and a hint, the hints name real
commands, and a decoded revert carries them."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import abi_to_signature, get_abi_input_types

from ailedger.chain import _revert_hints
from ailedger.chain._hex import keccak
from ailedger.chain._revert import revert_error
from ailedger.chain._revert_hints import HINTS, explain
from test_readme import _resolve

ARTIFACTS = Path(_revert_hints.__file__).parent / "artifacts"


def _errors() -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    out = []
    for path in sorted(ARTIFACTS.glob("*.json")):
        doc = json.loads(path.read_text())
        abi = doc["abi"] if isinstance(doc, dict) else doc
        out += [(path.stem, item, abi) for item in abi if item.get("type") == "error"]
    return out


ERRORS = _errors()


def _sample(abi_type: str) -> Any:
    if abi_type == "address":
        return "0x00000000000000000000000000000000000000aB"
    if abi_type.startswith("bytes"):
        return bytes(range(int(abi_type[5:] or 32)))
    if abi_type == "string":
        return "x" * 40
    if abi_type.startswith(("uint", "int")):
        return 7
    if abi_type == "bool":
        return True
    raise AssertionError(f"no sample for {abi_type}")


def test_the_artifacts_have_errors() -> None:
    assert len({name for name, _, _ in ERRORS}) == 13  # the markets and judges among them
    assert len(ERRORS) > 100


@pytest.mark.parametrize(
    ("contract", "error", "abi"), ERRORS, ids=[f"{c}.{e['name']}" for c, e, _ in ERRORS]
)
def test_every_custom_error_has_a_message_and_a_hint(
    contract: str, error: dict[str, Any], abi: list[dict[str, Any]]
) -> None:
    types = get_abi_input_types(error)
    values = [_sample(t) for t in types]
    data = keccak(text=abi_to_signature(error))[:4] + abi_encode(types, values)
    err = revert_error(f"{contract}.call", data, [abi])
    assert err.error_name == error["name"]
    assert err.hint, f"{contract}.{error['name']} has no hint"
    assert f"reverted: {error['name']}: " in err.message
    # every placeholder was filled from the error's own arguments
    assert "?" not in err.message.split(": ", 2)[2], err.message
    assert "?" not in err.hint, err.hint
    assert "{" not in err.message + err.hint


def test_no_entry_is_for_an_error_no_contract_has() -> None:
    names = {e["name"] for _, e, _ in ERRORS}
    qualified = {f"{c}.{e['name']}" for c, e, _ in ERRORS}
    stale = [k for k in HINTS if k not in names and k not in qualified]
    assert not stale, f"entries for errors no contract has: {stale}"


def test_every_command_in_a_hint_exists_with_its_options() -> None:
    commands = {c for _, hint in HINTS.values() for c in re.findall(r"`(ailedger [^`]+)`", hint)}
    assert len(commands) >= 10
    for line in commands:
        tokens = shlex.split(line)[1:]
        command, rest = _resolve(tokens)
        assert not hasattr(command, "commands") or command.invoke_without_command, line
        options = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        for token in rest:
            if token.startswith("--"):
                assert token in options, f"{line}: {command.name} has no option {token}"


def test_names_of_known_roles_and_environments_are_shown() -> None:
    message, hint = explain(
        "ModelRegistry", "RoleNotHeld", {"account": "0xAb", "role": keccak(text="qa")}
    )
    assert message == "0xAb does not hold the role qa in its organisation on the chain"
    assert "--role qa" in hint
    message, _ = explain(
        "ModelRegistry", "NotDeployer", {"env": keccak(text="prod"), "caller": "0xAb"}
    )
    assert "environment 'prod'" in message
    unknown = keccak(text="some-other-role")
    message, _ = explain("ModelRegistry", "RoleNotHeld", {"account": "0xAb", "role": unknown})
    assert "0x" + unknown.hex() in message


def test_an_error_bubbling_from_another_contract_uses_its_own_entry() -> None:
    """Membership's NotAMember(account, orgId) raised inside a ModelRegistry call."""
    org = keccak(text="acme")
    message, _ = explain("ModelRegistry", "NotAMember", {"account": "0xAb", "orgId": org})
    assert message == f"0xAb is not a member of organisation 0x{org.hex()}"
    message, _ = explain("ModelRegistry", "NotAMember", {"account": "0xAb"})
    assert message == "0xAb is not a member of any organisation on the chain"


def test_errors_that_are_not_ours_keep_the_raw_rendering() -> None:
    assert explain("Probe", "TooLarge", {"value": 1}) is None
    assert explain("X", "Error", {"reason": "no"}) is None
