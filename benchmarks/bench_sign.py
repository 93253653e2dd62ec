"""DSSE sign / verify throughput: ailedger's secp256k1 (coincurve) and P-256 signers, side by
side with eth-account's own ``sign_message`` / ``recover_message`` on the same message.

    .venv/bin/python benchmarks/bench_sign.py [--seconds 0.5] [--repeat 8]

The message is the PAE of a real signed statement (an evaluation attestation), so every row
signs and checks the same bytes. ailedger's secp256k1 signatures are EIP-191 personal_sign
signatures, byte-identical to eth-account's (checked before timing).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import coincurve
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.datatypes import PrivateKey as EthPrivateKey

from ailedger.attest import dsse
from ailedger.attest.predicates import EvaluationPredicate
from ailedger.attest.statements import make_statement, subject_from_digest
from ailedger.identity.keys import P256Signer, Secp256k1Signer, eip191_hash, recover_address


def _once(fn: Callable[[], object], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def rates(cases: dict[str, Callable[[], object]], seconds: float, repeat: int) -> dict[str, float]:
    """Best calls-per-second of each case over ``repeat`` rounds.

    Rounds interleave the cases, and each keeps its best round, because the machine is
    shared: a slow round measures the neighbours, and interleaving spreads them evenly.
    """
    for fn in cases.values():
        for _ in range(20):
            fn()
    best = dict.fromkeys(cases, 0.0)
    for _ in range(repeat):
        for name, fn in cases.items():
            best[name] = max(best[name], _once(fn, seconds))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="seconds per measurement")
    parser.add_argument("--repeat", type=int, default=8, help="rounds; each row keeps its best")
    args = parser.parse_args()

    predicate = EvaluationPredicate(
        metric="accuracy",
        value=0.93,
        comparator=">=",
        threshold=0.9,
        dataset_root="ab" * 32,
        sample_size=5000,
        tool="sklearn",
        command="python eval.py --split test",
    )
    statement = make_statement([subject_from_digest("sha256:" + "cd" * 32, "model")], predicate)
    payload = statement.canonical_json()
    message = dsse.pae(dsse.PAYLOAD_TYPE_IN_TOTO, payload)

    secp = Secp256k1Signer.generate()
    p256 = P256Signer.generate()
    key = secp._secret()
    signable = encode_defunct(primitive=message)
    eth_sig = Account.sign_message(signable, key).signature
    assert bytes(eth_sig) == secp.sign(message), "signatures differ from eth-account's"
    assert Account.recover_message(signable, signature=eth_sig) == secp.address

    digest = eip191_hash(message)
    raw_sig = bytes(eth_sig[:64]) + bytes([eth_sig[64] - 27])
    env_secp = dsse.sign(dsse.PAYLOAD_TYPE_IN_TOTO, payload, [secp])
    env_p256 = dsse.sign(dsse.PAYLOAD_TYPE_IN_TOTO, payload, [p256])
    trust_secp = [secp.public_key]
    trust_p256 = [p256.public_key]
    s, n = args.seconds, args.repeat

    cases: dict[str, Callable[[], object]] = {
        "secp256k1 sign      ailedger dsse.sign":
            lambda: dsse.sign(dsse.PAYLOAD_TYPE_IN_TOTO, payload, [secp]),
        "secp256k1 sign      ailedger Signer.sign(pae)": lambda: secp.sign(message),
        "secp256k1 sign      eth-account sign_message": lambda: Account.sign_message(signable, key),
        "secp256k1 verify    ailedger dsse.verify": lambda: dsse.verify(env_secp, trust_secp),
        "secp256k1 verify    ailedger recover_address": lambda: recover_address(message, eth_sig),
        "secp256k1 verify    eth-account recover_message":
            lambda: Account.recover_message(signable, signature=eth_sig),
        "secp256k1 verify    coincurve recover only (floor)":
            lambda: coincurve.PublicKey.from_signature_and_message(raw_sig, digest, hasher=None),
        "P-256     sign      ailedger dsse.sign":
            lambda: dsse.sign(dsse.PAYLOAD_TYPE_IN_TOTO, payload, [p256]),
        "P-256     verify    ailedger dsse.verify": lambda: dsse.verify(env_p256, trust_p256),
    }  # fmt: skip
    table = rates(cases, s, n)
    rows = list(table.items())
    backend = type(EthPrivateKey(key).backend).__name__
    print(f"python {platform.python_version()}, payload {len(payload)} B, PAE {len(message)} B,")
    print(f"best of {n} x {s:g} s per row")
    print(f"eth-keys backend under eth-account: {backend}")
    print(f"{'operation':50} {'ops/s':>10}")
    for name, value in rows:
        print(f"{name:50} {value:10.0f}")
    print()
    sign_ratio = (
        table["secp256k1 sign      ailedger dsse.sign"]
        / table["secp256k1 sign      eth-account sign_message"]
    )
    verify_ratio = (
        table["secp256k1 verify    ailedger dsse.verify"]
        / table["secp256k1 verify    eth-account recover_message"]
    )
    p256_ratio = (
        table["P-256     verify    ailedger dsse.verify"]
        / table["secp256k1 verify    ailedger dsse.verify"]
    )
    print(f"ailedger dsse.sign / eth-account sign_message:        {sign_ratio:5.2f}x")
    print(f"ailedger dsse.verify / eth-account recover_message:   {verify_ratio:5.2f}x")
    print(f"P-256 dsse.verify / secp256k1 dsse.verify:            {p256_ratio:5.2f}x")


if __name__ == "__main__":
    main()
