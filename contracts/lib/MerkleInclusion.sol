// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title MerkleInclusion
/// @notice RFC 9162 (section 2.1.3.2) inclusion proof verification over SHA-256
///         (leaf = H(0x00 || entry), node = H(0x01 || left || right)), using the sha256
///         precompile; the same trees as ailedger.merkle and dataset fingerprints. Proofs are
///         capped at MAX_PROOF hashes (enough for any 2^64-entry tree).
library MerkleInclusion {
    uint256 internal constant MAX_PROOF = 64;

    error ProofTooLong(uint256 length);

    /// @notice The RFC 9162 leaf hash of `entry`: sha256(0x00 || entry).
    function leafHash(bytes calldata entry) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), entry));
    }

    /// @notice Whether `leaf` is entry `index` of the tree of `size` entries with `root`.
    function verify(
        uint256 index,
        uint256 size,
        bytes32 leaf,
        bytes32[] calldata proof,
        bytes32 root
    ) internal view returns (bool) {
        uint256 len = proof.length;
        if (len > MAX_PROOF) revert ProofTooLong(len);
        if (index >= size) return false;
        uint256 fn = index;
        uint256 sn = size - 1;
        bytes32 r = leaf;
        for (uint256 i; i < len; ++i) {
            if (sn == 0) return false;
            if (fn & 1 == 1 || fn == sn) {
                r = _node(proof[i], r);
                if (fn & 1 == 0) {
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = _node(r, proof[i]);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r == root;
    }

    /// @dev sha256(0x01 || left || right) through the precompile at address 2.
    function _node(bytes32 left, bytes32 right) private view returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 0x01)
            mstore(add(p, 0x01), left)
            mstore(add(p, 0x21), right)
            if iszero(staticcall(gas(), 0x02, p, 0x41, 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }
}
