// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title IConsortium
 * @notice What the other cofab contracts ask the membership register.
 */
interface IConsortium {
    /// @notice Whether `account` is an active member holding every bit of `role`.
    function hasRole(address account, uint32 role) external view returns (bool);

    /// @notice Whether `signer` could sign for `member` acting as `role` at `blockNumber`/`timestamp`
    /// (the member itself, or one of its device keys authorised and unexpired then).
    function isAuthorizedSigner(address member, address signer, uint32 role, uint256 blockNumber, uint256 timestamp)
        external
        view
        returns (bool);
}
