"""The embedded chain: SQLite persistence, whole-block commits, crash safety, locking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import given, settings
from hypothesis import strategies as st

from _chain_util import ARTIFACTS, ETHER
from _profiles import examples
from ailedger.chain import (
    DEV_FAUCET_ADDRESS,
    EMBEDDED_CHAIN_ID,
    ContractReverted,
    open_embedded,
)
from ailedger.chain._sqlite_db import SQLiteKV
from ailedger.errors import ChainError, IntegrityError, InvalidInput

TAG = b"\x22" * 32


def test_fresh_chain_has_a_deterministic_funded_genesis(tmp_path: Path) -> None:
    hashes = []
    for name in ("a", "b"):
        with open_embedded(tmp_path / name) as chain:
            assert chain.chain_id == EMBEDDED_CHAIN_ID
            assert chain.block_number() == 0
            assert chain.balance(DEV_FAUCET_ADDRESS) == 10**9 * ETHER
            block = chain.w3.eth.get_block(0)
            hashes.append(block["hash"])
    assert hashes[0] == hashes[1]


def test_second_process_sees_blocks_balances_contracts_and_logs(tmp_path: Path) -> None:
    key = Account.create().key.hex()
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from eth_account import Account
        from ailedger.chain import open_embedded
        me = Account.from_key({key!r})
        with open_embedded(Path({str(tmp_path / "chain")!r}),
                           artifacts_dir=Path({str(ARTIFACTS)!r})) as chain:
            chain.fund(me.address, 10**18)
            probe = chain.deploy("Probe", 3, signer=me)
            chain.transact(probe, "store", 8, b"\\x01" * 32, "child", signer=me)
            print(probe.address)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    address = out.strip()
    me = Account.from_key(key)
    with open_embedded(tmp_path / "chain", artifacts_dir=ARTIFACTS) as chain:
        assert chain.block_number() == 3
        assert 0 < chain.balance(me.address) < ETHER
        probe = chain.at("Probe", address)
        assert chain.call(probe, "value") == 8
        [event] = chain.events(probe, "Stored")
        assert event.args["note"] == "child"
        assert chain.nonce(me.address) == 2


_WRITER = """
import sys
from pathlib import Path
from eth_account import Account
from ailedger.chain import open_embedded
directory, artifacts = Path(sys.argv[1]), Path(sys.argv[2])
me = Account.from_key(sys.argv[3])
chain = open_embedded(directory, artifacts_dir=artifacts)
chain.fund(me.address, 10**18)
probe = chain.deploy("Probe", 0, signer=me)
print("deployed", probe.address, probe.block_number, flush=True)
i = 0
while True:
    i += 1
    receipt = chain.transact(probe, "store", i, b"\\x01" * 32, "crash", signer=me)
    print("mined", receipt.block_number, i, flush=True)
"""


@pytest.mark.slow
def test_sigkill_mid_stream_leaves_the_last_committed_block(tmp_path: Path) -> None:
    me = Account.create()
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path / "chain"), str(ARTIFACTS), me.key.hex()],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    _, address, deploy_block = proc.stdout.readline().split()
    last_reported = int(deploy_block)
    for _ in range(25):
        _, block, _value = proc.stdout.readline().split()
        last_reported = int(block)
    os.kill(proc.pid, signal.SIGKILL)  # while it is still sending
    proc.wait()
    proc.stdout.close()

    with open_embedded(tmp_path / "chain", artifacts_dir=ARTIFACTS) as chain:
        head = chain.block_number()
        assert head >= last_reported  # nothing reported as mined was lost
        probe = chain.at("Probe", address)
        stores = head - int(deploy_block)  # every block after the deploy is one store()
        assert chain.call(probe, "count") == stores
        assert chain.call(probe, "value") == stores
        assert chain.nonce(me.address) == stores + 1
        assert len(chain.events(probe, "Stored")) == stores
        chain.transact(probe, "store", 1, TAG, "after the crash", signer=me)
        assert chain.block_number() == head + 1


def test_a_second_opener_waits_then_fails_clearly(tmp_path: Path) -> None:
    with (
        open_embedded(tmp_path / "chain"),
        pytest.raises(ChainError, match="in use by another process"),
    ):
        open_embedded(tmp_path / "chain", lock_timeout=0.1)
    with open_embedded(tmp_path / "chain", lock_timeout=0.1) as chain:  # released
        assert chain.block_number() == 0


def test_fund_and_fast_gas_estimate(tmp_path: Path) -> None:
    with open_embedded(tmp_path / "chain", artifacts_dir=ARTIFACTS) as chain:
        me: LocalAccount = Account.create()
        chain.fund(me.address, ETHER)
        probe = chain.deploy("Probe", 0, signer=me)
        # a long note makes the gas depend on input size; the estimate must still suffice
        receipt = chain.transact(probe, "store", 5, TAG, "x" * 5000, signer=me)
        assert receipt.gas_used > 50_000
        with pytest.raises(ContractReverted):
            chain.transact(probe, "store", 10**7, TAG, "x", signer=me)


def test_corrupt_database_is_an_integrity_error(tmp_path: Path) -> None:
    directory = tmp_path / "chain"
    directory.mkdir()
    (directory / "chain.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(IntegrityError):
        open_embedded(directory)


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.binary(min_size=1, max_size=4), st.binary(max_size=8)),
        st.tuples(st.just("del"), st.binary(min_size=1, max_size=4), st.just(b"")),
        st.tuples(st.just("commit"), st.just(b""), st.just(b"")),
        st.tuples(st.just("rollback"), st.just(b""), st.just(b"")),
    ),
    max_size=40,
)


@settings(max_examples=examples(60))
@given(ops=_ops)
def test_sqlite_kv_keeps_exactly_what_was_committed(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, bytes, bytes]]
) -> None:
    path = tmp_path_factory.mktemp("kv") / "kv.sqlite"
    kv = SQLiteKV(path)
    committed: dict[bytes, bytes] = {}
    pending: dict[bytes, bytes | None] = {}
    for op, key, value in ops:
        view = {**committed, **pending}
        if op == "set":
            kv[key] = value
            pending[key] = value
        elif op == "del":
            if view.get(key) is None:
                with pytest.raises(KeyError):
                    del kv[key]
            else:
                del kv[key]
                pending[key] = None
        elif op == "commit":
            kv.commit()
            for k, v in pending.items():
                if v is None:
                    committed.pop(k, None)
                else:
                    committed[k] = v
            pending.clear()
        else:
            kv.rollback()
            pending.clear()
        view = {k: v for k, v in {**committed, **pending}.items() if v is not None}
        for k in {key, *view}:
            assert kv.exists(k) == (k in view)
            if k in view:
                assert kv[k] == view[k]
    kv.close()  # uncommitted writes vanish
    reopened = SQLiteKV(path)
    for k, v in committed.items():
        assert reopened[k] == v
    assert all(not reopened.exists(k) for k in pending if k not in committed)
    reopened.close()


class _KeyWithAccount:
    """Shaped like ailedger's secp256k1 signer: an address and ``to_local_account()``."""

    def __init__(self) -> None:
        self._account = Account.create()
        self.address = self._account.address

    def to_local_account(self) -> LocalAccount:
        return self._account


def test_signers_that_hand_out_an_account(tmp_path: Path) -> None:
    key = _KeyWithAccount()
    with open_embedded(tmp_path / "chain", artifacts_dir=ARTIFACTS) as chain:
        chain.fund(key.address, ETHER)
        probe = chain.deploy("Probe", 1, signer=key)
        assert chain.call(probe, "owner") == key.address
        with pytest.raises(InvalidInput, match="cannot sign Ethereum transactions"):
            chain.send_value(key.address, 1, signer=object())  # type: ignore[arg-type]
