"""Keys and signers: who signs.

secp256k1 keys are Ethereum accounts (keystore v3 files, encrypted at rest), so one identity
signs off-chain statements and on-chain transactions; P-256 keys exist for OpenSSF
model-signing interop, Ed25519 keys for C2SP notes, in-toto and securesystemslib.
:mod:`.keys` holds the keystore and the signer classes.
"""

from __future__ import annotations

from ailedger.identity.keys import (
    KEY_TYPES,
    PBKDF2_ROUNDS_STANDARD,
    PBKDF2_ROUNDS_TEST_ONLY,
    SCRYPT_N_STANDARD,
    SCRYPT_N_TEST_ONLY,
    SECP256K1_N,
    Ed25519PublicKey,
    Ed25519Signer,
    ImportKind,
    KeyInfo,
    Keystore,
    KeyType,
    P256PublicKey,
    P256Signer,
    PublicKey,
    Secp256k1PublicKey,
    Secp256k1Signer,
    Signer,
    checksum_address,
    detect_import_kind,
    eip191_hash,
    load_public_key,
    parse_public_key,
    public_key_from_dict,
    recover_address,
    recover_digest,
)

__all__ = [
    "KEY_TYPES",
    "PBKDF2_ROUNDS_STANDARD",
    "PBKDF2_ROUNDS_TEST_ONLY",
    "SCRYPT_N_STANDARD",
    "SCRYPT_N_TEST_ONLY",
    "SECP256K1_N",
    "Ed25519PublicKey",
    "Ed25519Signer",
    "ImportKind",
    "KeyInfo",
    "KeyType",
    "Keystore",
    "P256PublicKey",
    "P256Signer",
    "PublicKey",
    "Secp256k1PublicKey",
    "Secp256k1Signer",
    "Signer",
    "checksum_address",
    "detect_import_kind",
    "eip191_hash",
    "load_public_key",
    "parse_public_key",
    "public_key_from_dict",
    "recover_address",
    "recover_digest",
]
