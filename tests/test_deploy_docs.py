"""docs/deploy.md and deploy/compose.yaml are real: every command in them is one this test runs.

docs/deploy.md marks each shell block with ``<!-- deploy-test: KIND NAME -->``:

- ``run``: a script, run with ``sh -ec`` to completion (it must exit 0);
- ``start``: a service (its script ``exec``s it), started with ``sh -ec`` in its own process
  group, waited for with the compose healthcheck of the service of the same name, and stopped
  by its PID at the end;
- ``manual``: not run (docker, pip, npm, chown: no Docker daemon or network here); such a
  block may hold only those commands, never an ``ailedger`` one.

Every service of deploy/compose.yaml that has a ``command:`` must have a block of the same
name whose script is the compose script under the page's placeholder scheme (volumes, secrets,
service hosts, ``--host 0.0.0.0``, ``$$``); so the compose commands are run too. The
healthchecks of compose (and the Dockerfile's ``HEALTHCHECK``) are what the test polls.

The page's blocks then run in their order with ``/srv/ailedger`` replaced by a temporary
directory and the ports 8080, 8081, 8082 and 8545 by free ones (the only substitutions), the
``ailedger`` of this environment and anvil from ``node_modules/.bin`` on ``PATH``. Before
``anchor-check`` the test waits (a bounded poll, never a timing assertion) until the log
service has anchored the entry that ``submit`` sent. It ends with the entry's receipt verified
with both witnesses' cosignatures and the anchor read back from anvil, and checks the same
facts itself from the chain.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from _anvil import ANVIL_LAUNCHER, free_port, require_anvil
from _cli import AILEDGER

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "deploy.md"
COMPOSE = REPO / "deploy" / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
ROOT = "/srv/ailedger"
PORTS = ("8080", "8081", "8082", "8545")
MANUAL_COMMANDS = ("docker ", "sudo chown ", "pip install ", "npm install ")
GUARD = 3000  # polls of 20 ms at most: a guard against a hang, never a timing assertion

_BLOCK = re.compile(r"<!-- deploy-test: (run|start|manual) ([\w-]+) -->\n```sh\n(.*?)```", re.S)


@dataclass(frozen=True)
class Block:
    kind: str
    name: str
    script: str


def doc_blocks() -> list[Block]:
    text = DOC.read_text()
    blocks = [Block(k, n, s) for k, n, s in _BLOCK.findall(text)]
    fences = re.findall(r"^```(?:sh|bash|console|shell)\b", text, flags=re.M)
    assert len(fences) == len(blocks), "every shell block of docs/deploy.md must be marked"
    names = [b.name for b in blocks]
    assert len(set(names)) == len(names), f"duplicate block names: {names}"
    return blocks


def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def compose_to_plain(doc: dict[str, Any], name: str, text: str) -> str:
    """Service ``name``'s text under the page's placeholder scheme."""
    service = doc["services"][name]
    text = text.replace("$$", "$")
    for volume in service.get("volumes", []):
        source, mount = volume.split(":")[:2]
        text = re.sub(rf"(?<![\w/]){re.escape(mount)}(?![\w-])", f"{ROOT}/{source}", text)
    for secret in service.get("secrets", []):
        text = text.replace(f"/run/secrets/{secret}", doc["secrets"][secret]["file"])
    hosts = "|".join(re.escape(s) for s in doc["services"])
    text = re.sub(rf"http://(?:{hosts}):(\d+)", r"http://127.0.0.1:\1", text)
    return text.replace("--host 0.0.0.0", "--host 127.0.0.1")


def healthcheck(doc: dict[str, Any], name: str) -> list[str]:
    """The compose healthcheck of service ``name`` (an exec-form ``CMD``), as plain argv."""
    test = doc["services"][name]["healthcheck"]["test"]
    assert test[0] == "CMD", f"{name}: healthcheck must be exec form"
    return [compose_to_plain(doc, name, arg) for arg in test[1:]]


def dockerfile_healthcheck() -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])\s*$", text, flags=re.M)
    assert match, "the Dockerfile has no exec-form HEALTHCHECK"
    argv = json.loads(match.group(1))
    assert isinstance(argv, list)
    return [str(a) for a in argv]


# --- the checks that need no process ---------------------------------------------------------


def test_every_compose_command_is_a_block_of_the_page() -> None:
    doc = compose()
    blocks = {b.name: b for b in doc_blocks()}
    with_command = [n for n, s in doc["services"].items() if "command" in s]
    assert len(with_command) >= 8
    for name in with_command:
        service = doc["services"][name]
        assert service.get("entrypoint") == ["sh", "-ec"], f"{name}: entrypoint sh -ec"
        assert len(service["command"]) == 1, f"{name}: one script"
        assert name in blocks, f"compose service {name} has no block in docs/deploy.md"
        plain = compose_to_plain(doc, name, service["command"][0])
        assert plain.strip() == blocks[name].script.strip(), f"{name} differs from the page"
        long_running = "restart" not in service or service["restart"] != "no"
        assert blocks[name].kind == ("start" if long_running else "run"), name


def test_compose_references_resolve() -> None:
    """What `docker compose config` would refuse (no Docker here): every volume, secret and
    dependency is declared; a service waits for one-shot steps to succeed and for services
    to be healthy (so those have a health check)."""
    doc = compose()
    services = doc["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in doc["volumes"], f"{name}: undeclared {volume}"
        for secret in service.get("secrets", []):
            assert doc["secrets"][secret]["file"].startswith(f"{ROOT}/secrets/"), secret
        for dep, how in service.get("depends_on", {}).items():
            one_shot = services[dep].get("restart") == "no"
            wanted = "service_completed_successfully" if one_shot else "service_healthy"
            assert how == {"condition": wanted}, f"{name} -> {dep}: {how}"
            if not one_shot:
                assert services[dep]["healthcheck"]["test"][0] == "CMD", dep
        if "ports" in service:  # published on the host's loopback only: TLS is the proxy's
            assert all(str(p).startswith("127.0.0.1:") for p in service["ports"]), name


def test_manual_blocks_hold_only_commands_that_cannot_run_here() -> None:
    for block in doc_blocks():
        if block.kind != "manual":
            continue
        for line in block.script.splitlines():
            assert line.startswith(MANUAL_COMMANDS), f"{block.name}: {line!r} must be tested"


def test_commands_with_options_are_only_in_marked_blocks() -> None:
    """An inline `ailedger ... --option` would be a command that no test runs."""
    text = _BLOCK.sub("", DOC.read_text())
    for span in re.findall(r"`([^`\n]+)`", text):
        if re.match(r"(ailedger|docker|pip|npm|sqlite3|anvil|sudo|tar) ", span):
            assert " -" not in span, f"put {span!r} in a marked block of docs/deploy.md"


def test_the_image_health_check_is_the_log_service_s() -> None:
    doc = compose()
    assert dockerfile_healthcheck() == healthcheck(doc, "log")
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, flags=re.M)
    assert re.search(r"^USER ailedger$", text, flags=re.M)  # never root
    assert "pip install --no-cache-dir --prefix=/install '.[server]'" in text


def test_the_placeholder_scheme_is_what_differs() -> None:
    """A compose script with a path, a host or a port outside the scheme would differ from
    the page (and fail the first test); here: the scheme itself."""
    doc = {
        "services": {"log": {"volumes": ["log:/data", "public:/public"], "secrets": ["pw"]}},
        "secrets": {"pw": {"file": f"{ROOT}/secrets/pw"}},
    }
    text = "a /data/x --p /run/secrets/pw --h http://log:1 --host 0.0.0.0 $$(cat /public/k) /datum"
    assert compose_to_plain(doc, "log", text) == (
        f"a {ROOT}/log/x --p {ROOT}/secrets/pw --h http://127.0.0.1:1 --host 127.0.0.1 "
        f"$(cat {ROOT}/public/k) /datum"
    )


# --- the page, run for real ------------------------------------------------------------------


class Deployment:
    """The page's blocks run in ``root`` with free ports; services stopped by their PID."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = {p: str(free_port()) for p in PORTS}
        self.started: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.outputs: dict[str, str] = {}
        path = [str(AILEDGER.parent), str(ANVIL_LAUNCHER.parent), os.environ.get("PATH", "")]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AILEDGER_")} | {
            "PATH": os.pathsep.join(path)
        }

    def local(self, text: str) -> str:
        text = text.replace(ROOT, str(self.root))
        return re.sub(
            r"(?<=[: ])(" + "|".join(PORTS) + r")\b", lambda m: self.ports[m.group(1)], text
        )

    def run(self, block: Block) -> None:
        done = subprocess.run(
            ["sh", "-ec", self.local(block.script)],
            env=self.env,
            capture_output=True,
            timeout=300,  # a guard against a hang only
            check=False,
        )
        out = done.stdout.decode() + done.stderr.decode()
        assert done.returncode == 0, f"block {block.name} exited {done.returncode}:\n{out}"
        self.outputs[block.name] = out

    def start(self, block: Block, health: list[str]) -> None:
        log = self.root / f"{block.name}.stderr"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                ["sh", "-ec", self.local(block.script)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,  # its own group: anvil's launcher and its binary
            )
        self.started.append((block.name, proc, log))
        argv = [self.local(a) for a in health]
        argv[0] = {"python": sys.executable}.get(argv[0], shutil.which(argv[0]) or argv[0])
        for _ in range(GUARD):
            if proc.poll() is not None:
                raise AssertionError(f"{block.name} exited {proc.returncode}:\n{log.read_text()}")
            if subprocess.run(argv, capture_output=True, check=False, timeout=30).returncode == 0:
                return
            time.sleep(0.02)
        raise AssertionError(f"{block.name} never became healthy:\n{log.read_text()}")

    def stop_all(self) -> None:
        for name, proc, log in reversed(self.started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the group whose leader is this PID
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
            assert code in (0, -signal.SIGTERM), f"{name} exited {code}:\n{log.read_text()}"
        self.started.clear()

    def wait_anchored(self, size: int) -> None:
        book = self.root / "log" / ".ailedger" / "anchors.json"
        for _ in range(GUARD * 2):
            if book.exists():
                anchors = json.loads(book.read_text()).get("ledger.example.org/log", [])
                if any(a["size"] >= size for a in anchors):
                    return
            time.sleep(0.02)
        raise AssertionError(f"the log service never anchored size {size}")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    require_anvil()
    if shutil.which("sqlite3") is None:
        pytest.skip("the backup block needs the sqlite3 command-line shell")
    d = Deployment(tmp_path)
    try:
        yield d
    finally:
        d.stop_all()


@pytest.mark.chain
def test_the_page_runs_end_to_end(deployment: Deployment) -> None:
    doc = compose()
    blocks = doc_blocks()
    assert [b.name for b in blocks if b.kind != "manual"][-4:] == [
        "submit",
        "anchor-check",
        "verify",
        "backup",
    ]
    for block in blocks:
        if block.name == "anchor-check":
            deployment.wait_anchored(1)
        if block.kind == "run":
            deployment.run(block)
        elif block.kind == "start":
            deployment.start(block, healthcheck(doc, block.name))

    # the image's own health check, against the running log service
    image_check = dockerfile_healthcheck()
    image_check[0] = sys.executable
    argv = [deployment.local(a) for a in image_check]
    assert subprocess.run(argv, check=False, timeout=30).returncode == 0

    # the facts the page claims, checked here from the chain, the service and the files
    status = deployment.outputs["anchor-check"]
    assert "log ledger.example.org/log: anchored size 1" in status, status
    verified = deployment.outputs["verify"]
    assert "ok: entry 0 of ledger.example.org/log" in verified, verified
    assert "anchored: #0 size 1" in verified, verified
    assert "2 witness cosignatures" in verified, verified
    public = deployment.root / "public"
    for w in ("witness-a", "witness-b"):
        name = (public / f"{w}.vkey").read_text().split("+")[0]
        assert name in verified, (name, verified)
    receipt = json.loads((public / "receipt-0.json").read_text())
    assert receipt["anchor"]["chain_id"] == 31337
    assert "ok: 1 entries" in deployment.outputs["backup"], deployment.outputs["backup"]
