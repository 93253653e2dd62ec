// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title MerkleConsistency
/// @notice RFC 9162 (section 2.1.4.2) consistency proof verification over SHA-256
///         (leaf = H(0x00 || data), node = H(0x01 || left || right)), using the sha256
///         precompile. Proofs are capped at MAX_PROOF hashes (enough for any 2^64-entry tree).
library MerkleConsistency {
    uint256 internal constant MAX_PROOF = 64;
    /// @dev sha256("") = the root of the empty tree.
    bytes32 internal constant EMPTY_ROOT =
        0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855;

    error ProofTooLong(uint256 length);

    /// @notice Whether (oldSize, oldRoot) is a prefix of (newSize, newRoot) by `proof`.
    function verify(
        uint256 oldSize,
        uint256 newSize,
        bytes32 oldRoot,
        bytes32 newRoot,
        bytes32[] calldata proof
    ) internal view returns (bool) {
        uint256 len = proof.length;
        if (len > MAX_PROOF) revert ProofTooLong(len);
        if (oldSize > newSize) return false;
        if (oldSize == newSize) return len == 0 && oldRoot == newRoot;
        if (oldSize == 0) return len == 0 && oldRoot == EMPTY_ROOT;
        if (len == 0) return false;

        // A power-of-two old tree is itself a node of the new tree: the proof omits it.
        bool omitted = oldSize & (oldSize - 1) == 0;
        uint256 fn = oldSize - 1;
        uint256 sn = newSize - 1;
        while (fn & 1 == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        bytes32 fr;
        uint256 i;
        if (omitted) {
            fr = oldRoot;
        } else {
            fr = proof[0];
            i = 1;
        }
        bytes32 sr = fr;
        for (; i < len; ++i) {
            bytes32 c = proof[i];
            if (sn == 0) return false;
            if (fn & 1 == 1 || fn == sn) {
                fr = _node(c, fr);
                sr = _node(c, sr);
                if (fn & 1 == 0) {
                    while (fn & 1 == 0 && fn != 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                sr = _node(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && fr == oldRoot && sr == newRoot;
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
