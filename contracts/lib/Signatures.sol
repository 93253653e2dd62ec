// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Signatures
/// @notice Strict ECDSA recovery over secp256k1: 65-byte signatures r || s || v only,
///         v in {27, 28}, s in the lower half of the curve order (no malleable twin), and a
///         recovered zero address is an error, never a signer.
library Signatures {
    /// @dev secp256k1 order n divided by 2 (EIP-2).
    uint256 internal constant HALF_ORDER =
        0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    error SignatureLength(uint256 length);
    error SignatureHighS();
    error SignatureBadV(uint8 v);
    error SignatureInvalid();

    /// @notice The address that signed `digest`, or a revert.
    function recover(bytes32 digest, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) {
            revert SignatureLength(signature.length);
        }
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(signature.offset)
            s := calldataload(add(signature.offset, 0x20))
            v := byte(0, calldataload(add(signature.offset, 0x40)))
        }
        if (uint256(s) > HALF_ORDER) {
            revert SignatureHighS();
        }
        if (v != 27 && v != 28) {
            revert SignatureBadV(v);
        }
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) {
            revert SignatureInvalid();
        }
        return signer;
    }
}
