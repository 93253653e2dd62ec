// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title EIP712
/// @notice EIP-712 domain (name, version, chainId, verifyingContract) for the contracts that
///         check signed messages. The separator is cached at deployment and recomputed if the
///         chain id changes (a fork), so a signature is never valid on another chain or on
///         another contract.
abstract contract EIP712 {
    bytes32 private constant _DOMAIN_TYPEHASH = keccak256(
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    );

    bytes32 private immutable _cachedSeparator;
    uint256 private immutable _cachedChainId;
    bytes32 private immutable _nameHash;
    bytes32 private immutable _versionHash;

    constructor(string memory name, string memory version) {
        _nameHash = keccak256(bytes(name));
        _versionHash = keccak256(bytes(version));
        _cachedChainId = block.chainid;
        _cachedSeparator = _buildSeparator();
    }

    /// @notice The EIP-712 domain separator for this chain and this contract.
    function domainSeparator() public view returns (bytes32) {
        if (block.chainid == _cachedChainId) {
            return _cachedSeparator;
        }
        return _buildSeparator();
    }

    function _buildSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(_DOMAIN_TYPEHASH, _nameHash, _versionHash, block.chainid, address(this))
        );
    }

    /// @dev keccak256("\x19\x01" || domainSeparator || structHash).
    function _hashTypedData(bytes32 structHash) internal view returns (bytes32 digest) {
        bytes32 separator = domainSeparator();
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), separator)
            mstore(add(ptr, 0x22), structHash)
            digest := keccak256(ptr, 0x42)
        }
    }
}
