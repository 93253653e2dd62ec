"""Registry writes through a real ``ailedger serve`` (``[log] url``): each command signs with
the client's key, submits, waits for a published checkpoint and reads its registry back from
the verified mirror, so ``status``, ``gate``, ``trace`` and ``lineage`` see what it wrote;
roles are the reading workspace's own; a lost race is refused; ``--timeout`` bounds every
call."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _cli import fails, ok
from _log_util import LOG_SIGNER
from _service import Service, server_workspace
from _workflow_util import Setup, variant
from ailedger.cli._remote import remote_log
from ailedger.errors import ConflictError
from ailedger.registry import Registry
from ailedger.registry._refs import VersionRef
from ailedger.registry.policy import parse_policy

OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")


@pytest.fixture
def service(setup: Setup, tmp_path: Path) -> Iterator[Service]:
    server_workspace(tmp_path / "server")
    allow = [setup.store.info(n).keyid for n in ("trainer", "qa")]
    args = [a for address in allow for a in ("--allow", address)]
    with Service(tmp_path / "server", *args, "--checkpoint-interval-ms", "20") as served:
        yield served


def _release(setup: Setup, version: str, model: Path) -> dict[str, Any]:
    """Register, evaluate and approve triage@VERSION: the last document."""
    ok(["model", "register", model, "--name", "triage", "--version", version,
        "--dataset", "patients@1", "--key", "trainer"])  # fmt: skip
    ok(["eval", "record", f"triage@{version}", "--name", "accuracy", "--metric",
        "accuracy=0.93", "--threshold", "accuracy>=0.9", "--key", "trainer"])  # fmt: skip
    return ok(["approve", f"triage@{version}", "--role", "qa", "--key", "qa"])


def _size(service: Service) -> int:
    return int(ok(["log", "verify", "--log", service.url])["remote"]["size"])


def test_the_release_workflow_records_in_the_service(setup: Setup, service: Service) -> None:
    ok(["log", "remote", service.url, "--log-key", LOG_SIGNER.address])
    data = ok(["dataset", "register", setup.data, "--name", "patients", "--version", "1",
               "--key", "trainer"])  # fmt: skip
    assert data["log_index"] == 0
    approved = _release(setup, "1.0", setup.model)
    assert approved["log_index"] == 3
    assert ok(["gate", "triage@1.0", "--policy", setup.policy, "--env", "prod"])["passed"]
    first = ok(["deploy", "triage@1.0", "--env", "prod", "--policy", setup.policy,
                "--key", "trainer"])  # fmt: skip
    _release(setup, "2.0", variant(setup, "m2", '{"v": 2}'))
    second = ok(["deploy", "triage@2.0", "--env", "prod", "--policy", setup.policy,
                 "--key", "trainer"])  # fmt: skip
    assert second["predicate"]["previous"]["log_index"] == first["log_index"]
    back = ok(["rollback", "--env", "prod", "--key", "trainer"])
    assert back["ref"] == "triage@1.0"
    ok(["deprecate", "triage@2.0", "--reason", "drift", "--key", "trainer"])
    inferred = ok(["infer", "record", "--model", "triage@1.0", "--input", setup.data,
                   "--output", setup.policy, "--key", "trainer"])  # fmt: skip
    assert inferred["log_index"] == 11

    # nothing went to the workspace's own log; the service holds every entry, verified
    assert ok(["log", "show", "--log", "local"])["size"] == 0
    assert _size(service) == 12
    status = ok(["status"])
    assert status["in_step"] is True
    assert (status["log"]["size"], status["log"]["url"]) == (12, service.url)
    trace = ok(["trace", "--env", "prod"])
    assert (trace["model"], trace["event"]["log_index"]) == ("triage@1.0", back["log_index"])
    lineage = ok(["lineage", "triage@2.0"])
    assert [d["action"] for d in lineage["deployments"]] == ["deploy", "deprecate"]
    fails(["deploy", "triage@2.0", "--env", "prod", "--policy", setup.policy,
           "--key", "trainer"], 10, "deprecated")  # fmt: skip

    # the authority rules are judged as locally, before anything is signed or submitted
    fails(["rollback", "--env", "prod", "--key", "qa"], 5, "deployer")
    fails(["approve", "triage@1.0", "--role", "qa", "--key", "trainer"], 5, "does not hold")
    assert _size(service) == 12
    fails(["status", "--repair"], 3, "--repair works on the workspace's own log")


def test_roles_are_the_reading_workspace_s_own(
    setup: Setup, service: Service, tmp_path: Path
) -> None:
    """Another party reading the same log counts a deploy as an event only when its own
    workspace grants the signer the deployer role."""
    remote = ["--log", service.url, "--log-key", LOG_SIGNER.address]
    ok(["dataset", "register", setup.data, "--name", "patients", "--version", "1",
        "--key", "trainer", *remote])  # fmt: skip
    ok(["model", "register", setup.model, "--name", "triage", "--version", "1.0",
        "--dataset", "patients@1", "--key", "trainer", *remote])  # fmt: skip
    policy = setup.root / "open.toml"
    policy.write_text("version = 1\nunsafe_allow_no_requirements = true\n")
    ok(["deploy", "triage@1.0", "--env", "prod", "--policy", policy, "--key", "trainer",
        *remote])  # fmt: skip

    other = tmp_path / "other"
    other.mkdir()
    ok(["--workspace", other, "init"])
    there = ["--workspace", other, "trace", "--env", "prod", *remote]
    fails(there, 4, "prod")  # no role granted there: no deploy of prod is an event
    trainer = setup.store.info("trainer").keyid
    ok(["--workspace", other, "roles", "grant", trainer, "deployer", "--org", "acme"])
    assert ok(there)["model"] == "triage@1.0"


def test_a_deploy_that_lost_a_race_is_refused(setup: Setup, service: Service) -> None:
    """A log service has no compare-and-swap: of two deploys naming the same previous event,
    the one logged second is not an event, and its command says so."""
    ok(["log", "remote", service.url, "--log-key", LOG_SIGNER.address])
    ok(["model", "register", setup.model, "--name", "r", "--version", "1", "--key", "trainer"])
    ok(["model", "register", variant(setup, "m2", '{"v": 2}'), "--name", "r", "--version", "2",
        "--key", "trainer"])  # fmt: skip
    policy = setup.root / "open.toml"
    policy.write_text("version = 1\nunsafe_allow_no_requirements = true\n")
    remote = remote_log(service.url, None, setup.ws)
    mirror = remote.open()
    submit = remote.appender(mirror)
    won: dict[str, Any] = {}

    def racing(envelope: bytes) -> int:
        """Another client deploys r@1 after this one read the head, before it submits."""
        won.update(ok(["deploy", "r@1", "--env", "prod", "--policy", policy, "--key", "trainer"]))
        return submit(envelope)

    keys = setup.store.list_keys()
    with (
        Registry.open(
            setup.ws, keys=keys, log=mirror, index_path=remote.index_path, appender=racing
        ) as registry,
        pytest.raises(ConflictError, match="logged first") as refused,
    ):
        registry.deploy(VersionRef("r", "2"), "prod", setup.signer("trainer"), OPEN)
    assert f"entry {won['log_index']}: deploy r@1" in refused.value.message
    assert ok(["trace", "--env", "prod"])["model"] == "r@1"
    fails(["status"], 12, "a fork, ignored")


@pytest.fixture
def silent() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_timeout_is_one_line_exit_13(setup: Setup, silent: str) -> None:
    key = ["--log-key", LOG_SIGNER.address]
    out = fails(["log", "verify", "--log", silent, *key, "--timeout", "0.2"], 13, "timed out")
    assert len(out.strip().splitlines()) <= 2
    fails(["trace", "--env", "prod", "--log", silent, *key, "--timeout", "0.2"], 13, "timed out")
    # [log] timeout applies to every command using the configured service, writes included
    ok(["log", "remote", silent, *key])
    text = setup.ws.config_path.read_text().replace("[log]", "[log]\ntimeout = 0.2", 1)
    setup.ws.config_path.write_text(text)
    fails(["dataset", "register", setup.data, "--name", "p", "--version", "1",
           "--key", "trainer"], 13, "timed out")  # fmt: skip
    fails(["approve", "x@1", "--role", "qa", "--key", "qa"], 13, "timed out")
    fails(["log", "verify", "--timeout", "0"], 2)  # below the minimum: a usage error
