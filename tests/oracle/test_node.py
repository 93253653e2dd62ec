"""Oracle nodes as separate processes on 127.0.0.1, rounds on the embedded chain.

Four (or six) ``ailedger oracle run`` processes serve one module; each test deploys its own
OracleFeeds contract (n=4, f=1) on a fresh embedded chain and leads rounds against them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from ailedger.attest import dsse
from ailedger.attest.statements import Statement
from ailedger.chain import DEV_FAUCET_KEY, Chain, DeployedContract, open_embedded
from ailedger.chain.eip712 import recover_signer
from ailedger.chain.oracle_report import (
    OracleReport,
    config_digest,
    feed_id,
    feed_label,
    observation_digest,
    oracle_domain,
)
from ailedger.chain.oracles import OracleFeeds
from ailedger.errors import InvalidInput
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import SCRYPT_N_TEST_ONLY, Keystore, Secp256k1Signer
from ailedger.log import TransparencyLog
from ailedger.oracle._http import request_json
from ailedger.oracle.node import (
    InputMismatch,
    OracleNode,
    ReportRefused,
    report_from_dict,
    serve,
    verify_observation,
)
from ailedger.oracle.observation import Observation, median_is_honest
from ailedger.oracle.round import (
    MAX_BACKDATE,
    OracleReportPredicate,
    QuorumNotReached,
    RoundResult,
    report_time,
    run_round,
)
from ailedger.oracle.scoring import CONFIG_FILE, ModelMismatch, score_batch, train_drought_model
from ailedger.oracle.sensors import DEFAULT_FARMS, Batch, WeatherConfig, write_weather_batches
from ailedger.registry import Registry, VersionRef
from ailedger.workspace import Workspace

pytest.importorskip("sklearn")

FEED = "drought/farm-3"
#: The feed's creator (its namespace): the dev faucet, which creates it in ``_deploy``.
CREATOR = Account.from_key(DEV_FAUCET_KEY).address
PASSWORD = "oracle-test-password"
LIE = -5000
KEYS = sorted((Secp256k1Signer.generate() for _ in range(4)), key=lambda k: int(k.address, 16))


@dataclass
class World:
    root: Path
    model_dir: Path
    digest: str
    batches: dict[int, Batch]
    urls: list[str]  # 3 honest nodes, then the liar
    faulty: list[str]  # two nodes that never answer (keys of nodes 2 and 3)


def _spawn(root: Path, args: list[str], procs: list[subprocess.Popen[str]]) -> None:
    env = {**os.environ, "AILEDGER_PASSWORD": PASSWORD}
    cmd = [sys.executable, "-m", "ailedger.cli._oracle", "run", "--json", *args]
    procs.append(subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, text=True))


def _ready(proc: subprocess.Popen[str]) -> str:
    """The URL from the node's ``ready`` line (it picked a free port itself)."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"oracle node exited with {proc.wait()}")
    return str(json.loads(line)["url"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("oracles")
    ws = Workspace.init(root, origin="oracle.test/log")
    store = Keystore(ws.keys_dir, scrypt_n=SCRYPT_N_TEST_ONLY)
    for i, key in enumerate(KEYS):
        store.add(f"oracle-{i}", key, PASSWORD)
    model_dir = train_drought_model(root / "model", seed=5, seasons=10)
    digest = fingerprint_model(model_dir, tensors=False).subject_digest.hex()
    cfg = WeatherConfig(drought_farms=("farm-3",))
    batches = write_weather_batches(root / "batches", DEFAULT_FARMS, cfg, seed=9)
    by_epoch = {b.epoch: b for b in batches if b.key == "farm-3"}
    common = [
        "--feed",
        FEED,
        "--feed-creator",
        CREATOR,
        "--model-dir",
        str(model_dir),
        "--digest",
        digest,
    ]
    procs: list[subprocess.Popen[str]] = []
    try:
        for i in range(4):
            lie = ["--lie-by", str(LIE)] if i == 3 else []
            _spawn(root, [*common, "--key", f"oracle-{i}", *lie], procs)
        for i in (2, 3):
            _spawn(root, [*common, "--key", f"oracle-{i}", "--faulty"], procs)
        urls = [_ready(proc) for proc in procs]
        yield World(root, model_dir, digest, by_epoch, urls[:4], urls[4:])
    finally:
        for proc in procs:  # stopped by PID, each one
            proc.terminate()
            proc.wait(timeout=10)
            if proc.stdout:
                proc.stdout.close()


@dataclass
class Feeds:
    chain: Chain
    feeds: DeployedContract
    transmitter: Secp256k1Signer


def _deploy(chain: Chain) -> Feeds:
    faucet = Account.from_key(DEV_FAUCET_KEY)
    feeds = chain.deploy("OracleFeeds", 3600, signer=faucet)
    signers = sorted((k.address for k in KEYS), key=lambda a: int(a, 16))
    transmitter = Secp256k1Signer.generate()
    chain.fund(transmitter.address, 10**18)
    label = feed_label(FEED)
    tx = [transmitter.address]
    chain.transact(feeds, "createFeed", label, signers, tx, 1, 0, 10_000, 3600, signer=faucet)
    return Feeds(chain, feeds, transmitter)


@pytest.fixture
def onchain(tmp_path: Path) -> Iterator[Feeds]:
    with open_embedded(tmp_path / "chain") as chain:
        yield _deploy(chain)


def _round(
    world: World, on: Feeds, epoch: int, urls: list[str], log: TransparencyLog | None = None
) -> RoundResult:
    return run_round(
        on.chain,
        on.feeds,
        FEED,
        epoch,
        world.batches[epoch].path,
        urls,
        model_digest=world.digest,
        creator=CREATOR,
        transmitter=on.transmitter,
        tries=2,
        log=log,
    )


def test_round_with_a_lying_oracle_stores_the_honest_median(
    world: World, onchain: Feeds, tmp_path: Path
) -> None:
    honest = score_batch(world.model_dir, world.batches[1].path, world.digest)
    with TransparencyLog.open(tmp_path / "log.sqlite", "oracle.test/log") as log:
        result = _round(world, onchain, 1, world.urls, log=log)
        assert not result.failures
        assert sorted(o.value for o in result.observations) == [honest + LIE] + [honest] * 3
        stored = OracleFeeds(onchain.chain, onchain.feeds).round(feed_id(CREATOR, FEED), 1)
        assert stored is not None
        assert stored.answer == honest == result.answer
        assert median_is_honest([honest] * 3, [honest + LIE])
        assert stored.input_root.hex() == world.batches[1].root.hex()
        assert stored.model_digest.hex() == world.digest
        # the log holds the four observation statements and the report statement
        assert log.size() == 5
        observers = {verify_observation(_envelope(log, i)).oracle for i in range(4)}
        assert observers == {k.address for k in KEYS}
        report = Statement.from_json(_envelope(log, 4).payload)
        assert report.predicate_type == OracleReportPredicate.PREDICATE_TYPE
        pred = OracleReportPredicate.model_validate(report.predicate)
        assert pred.transaction == result.tx_hash
        assert pred.answer == honest
        assert len(pred.signers) == 4
    # the next epoch over the next batch is accepted too
    assert _round(world, onchain, 2, world.urls[:3]).epoch == 2


def _envelope(log: TransparencyLog, index: int) -> dsse.Envelope:
    return dsse.Envelope.from_json(log.get(index).envelope)


def test_one_faulty_node_is_left_out(world: World, onchain: Feeds) -> None:
    result = _round(world, onchain, 1, [*world.urls[:3], world.faulty[1]])
    assert len(result.observations) == 3
    assert "unreachable after 2 tries" in result.failures[world.faulty[1]]


def test_two_faulty_nodes_of_four_fail_cleanly(world: World, onchain: Feeds) -> None:
    with pytest.raises(QuorumNotReached, match=r"2 oracles observed, 3 needed \(f=1\)") as err:
        _round(world, onchain, 1, [*world.urls[:2], *world.faulty])
    assert "unreachable after 2 tries" in err.value.message
    assert "\n" not in err.value.message
    assert onchain.chain.call(onchain.feeds, "latestEpoch", feed_id(CREATOR, FEED)) == 0


def test_a_tampered_model_makes_a_node_refuse(world: World, onchain: Feeds, tmp_path: Path) -> None:
    copy = shutil.copytree(world.model_dir, tmp_path / "model")
    node = OracleNode(FEED, KEYS[3], copy, world.digest, creator=CREATOR)
    config = copy / CONFIG_FILE
    config.write_text(config.read_text().replace("drought", "dr0ught", 1))
    with pytest.raises(ModelMismatch, match="refusing to load"):
        node.observe(1, world.batches[1].path, world.batches[1].root)
    with serve(node) as server:
        result = _round(world, onchain, 1, [*world.urls[:3], server.url])
    assert "refusing to load" in result.failures[server.url]
    # and the CLI will not even start on it
    env = {**os.environ, "AILEDGER_PASSWORD": PASSWORD}
    args = ["--feed", FEED, "--feed-creator", CREATOR, "--model-dir", str(copy)]
    args += ["--digest", world.digest, "--key", "oracle-0"]
    done = subprocess.run(
        [sys.executable, "-m", "ailedger.cli._oracle", "run", *args],
        cwd=world.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "refusing to load" in done.stderr
    assert not done.stdout


def test_run_on_a_model_that_is_not_a_drought_model_is_one_line(
    world: World, tmp_path: Path
) -> None:
    """`oracle run` with some other model: exit 3 and one line, not an internal error."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.pkl").write_bytes(pickle.dumps({"weights": [0.5, 1.5]}))
    (other / "config.json").write_text('{"arch": "not-a-drought-model"}')  # was a KeyError
    digest = fingerprint_model(other, tensors=False).subject_digest.hex()
    env = {**os.environ, "AILEDGER_PASSWORD": PASSWORD}
    args = ["--feed", FEED, "--feed-creator", CREATOR, "--model-dir", str(other)]
    args += ["--digest", digest, "--key", "oracle-0"]
    done = subprocess.run(
        [sys.executable, "-m", "ailedger.cli._oracle", "run", *args],
        cwd=world.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert "is not a drought model" in done.stderr
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    assert not done.stdout


def test_run_takes_a_registered_model_and_rejects_ambiguous_options(world: World) -> None:
    ws = Workspace.open(world.root / ".ailedger")
    store = Keystore(ws.keys_dir, scrypt_n=SCRYPT_N_TEST_ONLY)
    with Registry.open(ws, keys=store.list_keys()) as registry:
        registry.register_model(world.model_dir, VersionRef("drought", "1"), KEYS[0])
    procs: list[subprocess.Popen[str]] = []
    ref = ["--model", "drought@1", "--key", "oracle-0"]
    _spawn(world.root, ["--feed", FEED, "--feed-creator", CREATOR, *ref], procs)
    try:
        health = request_json(_ready(procs[0]) + "/health")
    finally:
        procs[0].terminate()
        procs[0].wait(timeout=10)
        if procs[0].stdout:
            procs[0].stdout.close()
    assert health["model_digest"] == world.digest
    assert health["oracle"] == KEYS[0].address
    env = {**os.environ, "AILEDGER_PASSWORD": PASSWORD}
    both = ["--model", "drought@1", "--model-dir", str(world.model_dir), "--key", "oracle-0"]
    cli = [sys.executable, "-m", "ailedger.cli._oracle", "run", "--feed", FEED]
    cli += ["--feed-creator", CREATOR]
    done = subprocess.run(
        [*cli, *both],
        cwd=world.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "exactly one of --model" in done.stderr


def test_a_node_refuses_invented_values_and_other_inputs(world: World) -> None:
    nodes = [OracleNode(FEED, k, world.model_dir, world.digest, creator=CREATOR) for k in KEYS]
    batch = world.batches[0]
    with pytest.raises(InputMismatch):
        nodes[0].observe(0, batch.path, b"\x00" * 32)
    envelopes = [n.observe(0, batch.path, batch.root) for n in nodes[:3]]
    values = {verify_observation(e).oracle: verify_observation(e).value for e in envelopes}
    contract = "0x" + "ab" * 20
    signers = [k.address for k in KEYS]
    digest = config_digest(1337, contract, feed_id(CREATOR, FEED), 1, signers)

    def report(observed: dict[str, int]) -> OracleReport:
        return OracleReport.build(
            feed_id(CREATOR, FEED),
            digest,
            0,
            observed,
            signers,
            batch.root,
            bytes.fromhex(world.digest),
            int(time.time()),
        )

    def sign(node: OracleNode, rep: OracleReport, version: int = 1) -> bytes:
        return node.sign(
            rep,
            chain_id=1337,
            contract=contract,
            config_version=version,
            signers=signers,
            envelopes=envelopes,
        )

    assert len(sign(nodes[0], report(values))) == 65
    forged = {**values, KEYS[1].address: values[KEYS[1].address] + 1}
    with pytest.raises(ReportRefused, match="not the signed ones"):
        sign(nodes[0], report(forged))
    with pytest.raises(ReportRefused, match="another feed, contract or oracle set"):
        sign(nodes[0], report(values), version=2)
    with pytest.raises(ReportRefused, match="no observation for epoch"):
        sign(nodes[3], report(values))


def test_finding15_node_refuses_to_cosign_observations_nobody_signed(world: World) -> None:
    """OracleFeeds checks f+1 report signatures, not one signature per observation (issue 10,
    finding 15): an honest co-signer is what stops a leader from attributing a value to an
    oracle that never signed an observation statement for it."""
    nodes = [OracleNode(FEED, k, world.model_dir, world.digest, creator=CREATOR) for k in KEYS]
    batch = world.batches[0]
    envelopes = [n.observe(0, batch.path, batch.root) for n in nodes[:3]]  # KEYS[3] silent
    values = {verify_observation(e).oracle: verify_observation(e).value for e in envelopes}
    contract = "0x" + "ab" * 20
    signers = [k.address for k in KEYS]
    claimed = {**values, KEYS[3].address: 0}  # attributed to an oracle that observed nothing
    report = OracleReport.build(
        feed_id(CREATOR, FEED),
        config_digest(1337, contract, feed_id(CREATOR, FEED), 1, signers),
        0,
        claimed,
        signers,
        batch.root,
        bytes.fromhex(world.digest),
        int(time.time()),
    )
    with pytest.raises(ReportRefused, match="not the signed ones"):
        nodes[0].sign(
            report,
            chain_id=1337,
            contract=contract,
            config_version=1,
            signers=signers,
            envelopes=envelopes,
        )


def test_the_round_cli_against_node_processes(world: World, tmp_path: Path) -> None:
    ws_chain = world.root / ".ailedger" / "chain"
    with open_embedded(ws_chain) as chain:
        on = _deploy(chain)
    Keystore(world.root / ".ailedger" / "keys", scrypt_n=SCRYPT_N_TEST_ONLY).add(
        "transmitter", on.transmitter, PASSWORD
    )
    env = {**os.environ, "AILEDGER_PASSWORD": PASSWORD}
    base = [sys.executable, "-m", "ailedger.cli._oracle", "round", "--feed", FEED]
    base += ["--feed-creator", CREATOR]
    args = ["--key", "transmitter", "--contract", on.feeds.address, "--digest", world.digest]
    batch = ["--batch", str(world.batches[3].path)]

    def run(epoch: int, peers: list[str]) -> subprocess.CompletedProcess[str]:
        cmd = [*base, *args, *batch, "--epoch", str(epoch), "--peers", ",".join(peers), "--json"]
        return subprocess.run(cmd, cwd=world.root, env=env, capture_output=True, text=True)

    done = run(3, world.urls)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    honest = score_batch(world.model_dir, world.batches[3].path, world.digest)
    assert answer["answer"] == honest
    # the liar's value may fall outside the feed's bounds: then it is left out, not signed
    assert len(answer["signers"]) + len(answer["failures"]) == 4
    failed = run(4, [*world.urls[:2], *world.faulty])
    assert failed.returncode == 8
    assert failed.stderr.count("error:") == 1
    assert "3 needed (f=1)" in failed.stderr


_b32 = st.binary(min_size=32, max_size=32)
_u64 = st.integers(0, 2**64 - 1)
reports = st.tuples(
    _b32, _b32, _u64, st.lists(st.integers(-(2**255), 2**255 - 1), max_size=8), _b32, _b32, _u64
).map(
    lambda t: OracleReport(t[0], t[1], t[2], tuple(t[3]), bytes(range(len(t[3]))), t[4], t[5], t[6])
)


@given(reports)
def test_report_dict_round_trip(report: OracleReport) -> None:
    assert report_from_dict(json.loads(json.dumps(report.to_dict()))) == report


@pytest.mark.parametrize(
    "doc",
    [{}, {"feed_id": "zz"}, {"feed_id": "0x" + "00" * 31}],
)
def test_malformed_reports_are_one_clear_error(doc: dict[str, object]) -> None:
    good = OracleReport(b"\x01" * 32, b"\x02" * 32, 1, (5,), b"\x00", b"\x03" * 32, b"\x04" * 32, 9)
    with pytest.raises(InvalidInput):
        report_from_dict({**good.to_dict(), **doc} if doc else doc)


def test_observation_envelope_must_be_signed_by_its_oracle(world: World) -> None:
    node = OracleNode(FEED, KEYS[0], world.model_dir, world.digest, creator=CREATOR)
    envelope = node.observe(0, world.batches[0].path, world.batches[0].root)
    obs = Observation.from_statement(Statement.from_json(envelope.payload))
    other = dsse.sign(envelope.payload_type, envelope.payload, [KEYS[1]])
    with pytest.raises(Exception, match="signed by"):
        verify_observation(other)
    assert verify_observation(envelope) == obs


@given(
    now=st.integers(1_000_000, 2_000_000_000),
    lag=st.integers(-3_600, 86_400),
    max_age=st.integers(2, 86_400),
)
def test_report_time_fits_a_lagging_or_idle_chain(now: int, lag: int, max_age: int) -> None:
    latest = now - lag  # the chain's latest block; lag < 0: its clock runs ahead of ours
    stamp = report_time(now, latest, max_age)
    assert stamp <= now  # never from our future
    assert stamp <= max(latest, now - min(max_age // 2, MAX_BACKDATE))
    assert now - stamp <= min(max_age // 2, MAX_BACKDATE)  # never stale by our clock
    if 0 <= lag <= min(max_age // 2, MAX_BACKDATE):
        assert stamp == latest  # a chain lagging a little: stamp with its clock


def test_a_node_signs_its_own_observation_for_the_round_it_observed(world: World) -> None:
    """The EIP-712 observation signature (what OracleFeeds checks and OracleJudge slashes on)
    is over the node's own value, and only for its feed, oracle set, input and model."""
    node = OracleNode(FEED, KEYS[0], world.model_dir, world.digest, creator=CREATOR)
    batch = world.batches[0]
    contract = "0x" + "ab" * 20
    signers = [k.address for k in KEYS]
    mine = verify_observation(node.observe(0, batch.path, batch.root))
    fid = feed_id(CREATOR, FEED)
    template = OracleReport(
        fid,
        config_digest(1337, contract, fid, 1, signers),
        0,
        (),
        b"",
        batch.root,
        bytes.fromhex(world.digest),
        int(time.time()),
    )

    def sign(round_: OracleReport, version: int = 1) -> bytes:
        return node.sign_observation(
            round_, chain_id=1337, contract=contract, config_version=version, signers=signers
        )

    signature = sign(template)
    digest = observation_digest(oracle_domain(1337, contract), template, mine.value)
    assert recover_signer(digest, signature) == KEYS[0].address
    other_value = observation_digest(oracle_domain(1337, contract), template, mine.value + 1)
    assert recover_signer(other_value, signature) != KEYS[0].address
    with pytest.raises(ReportRefused, match="another feed, contract or oracle set"):
        sign(template, version=2)
    with pytest.raises(ReportRefused, match="input root"):
        sign(dataclasses.replace(template, input_root=b"\x00" * 32))
    with pytest.raises(ReportRefused, match="model"):
        sign(dataclasses.replace(template, model_digest=b"\x00" * 32))
    with pytest.raises(ReportRefused, match="not recent"):
        sign(dataclasses.replace(template, observations_timestamp=1))
    with pytest.raises(ReportRefused, match="no observation for epoch"):
        sign(dataclasses.replace(template, epoch=5))
