"""Model signing and verification, end to end: ailedger against OpenSSF model-signing 1.1.1.

    .venv/bin/python benchmarks/bench_model_sign.py [--size 1.0] [--files 2000] [--rounds 3]

Two models under benchmarks/_data/: the Hugging Face style directory of bench_model.py (about
``--size`` GB of safetensors, hashing dominates) and ``--files`` small files (1-4 KB each, the
per-file and per-resource overhead dominates). For each, every round runs, interleaved:
``model_signing.signing.Config().use_elliptic_key_signer(...).sign`` and the matching
``verifying`` call (its library, in this process, P-256 key), then ailedger's ``sign_model``
and ``verify_model`` with the same key (no stat cache: every byte is re-read, as a verifier
must). Each side verifies the other's bundle once first (the script asserts it). Best wall and
best CPU time (all threads) per row; the ratio is model-signing time / ailedger time.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ailedger.attest.model_signing import read_bundle, sign_model, verify_model
from ailedger.identity.keys import P256Signer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import DATA, generate


def small_files(root: Path, count: int) -> Path:
    model = root / f"model-{count}-small-files"
    marker = model / ".complete"
    if marker.exists():
        return model
    for i in range(count):
        path = model / f"part-{i // 100:03d}" / f"file-{i:05d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(512 + (i * 37) % 1536).hex().encode())
    marker.write_text("")
    return model


def _best(fn: Callable[[], None], times: dict[str, list[tuple[float, float]]], name: str) -> None:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    times.setdefault(name, []).append((time.perf_counter() - w0, time.process_time() - c0))


def bench(model: Path, rounds: int, work: Path) -> list[tuple[str, float, float]]:
    import model_signing.signing
    import model_signing.verifying

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = work / "key.pem", work / "key.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    signer = P256Signer(key)
    theirs, ours = work / "theirs.sig", work / "ours.sig"

    def ms_sign() -> None:
        model_signing.signing.Config().use_elliptic_key_signer(private_key=private).sign(
            model, theirs
        )

    def ms_verify(sig: Path) -> None:
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
            model, sig
        )

    def al_sign() -> None:
        ours.write_bytes(sign_model(model, signer).to_json())

    def al_verify(sig: Path) -> None:
        verify_model(model, read_bundle(sig.read_bytes()), signer.public_key)

    ms_sign()
    al_sign()
    ms_verify(ours)  # cross-checks: each accepts the other's bundle
    al_verify(theirs)
    times: dict[str, list[tuple[float, float]]] = {}
    for _ in range(rounds):
        _best(ms_sign, times, "model-signing sign")
        _best(al_sign, times, "ailedger sign")
        _best(lambda: ms_verify(theirs), times, "model-signing verify")
        _best(lambda: al_verify(ours), times, "ailedger verify")
    return [(n, min(w for w, _ in t), min(c for _, c in t)) for n, t in times.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=float, default=1.0, help="large model size in GB (default 1)")
    ap.add_argument("--files", type=int, default=2000, help="small files (default 2000)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--data", type=Path, default=DATA, help="where the models are generated")
    args = ap.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, best of {args.rounds}")
    for model in (generate(args.data, args.size, 4), small_files(args.data, args.files)):
        files = sorted(str(p) for p in model.rglob("*") if p.is_file())
        nbytes = sum(os.path.getsize(f) for f in files)
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)  # warm the cache
        print(f"\n{model.name}: {len(files)} files, {nbytes / 1e6:.1f} MB")
        with tempfile.TemporaryDirectory(prefix="ailedger-bench-") as work:
            rows = bench(model, args.rounds, Path(work))
        by_name = {n: (w, c) for n, w, c in rows}
        print(f"{'run':24} {'wall s':>8} {'CPU s':>8} {'MB/s':>8} {'ratio (wall)':>13}")
        for name, wall, cpu in rows:
            op = name.split()[-1]
            peer = by_name[f"model-signing {op}"][0]
            ratio = f"{peer / wall:.2f}x" if name.startswith("ailedger") else ""
            print(f"{name:24} {wall:8.3f} {cpu:8.3f} {nbytes / 1e6 / wall:8.0f} {ratio:>13}")


if __name__ == "__main__":
    main()
