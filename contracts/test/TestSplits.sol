// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ISplits} from "../interfaces/ISplits.sol";

/// @notice Test stand-in for the JobBoard's split lookup: anyone assigns splits. Never deployed by cofab.
contract TestSplits is ISplits {
    mapping(uint256 => mapping(uint256 => address)) private _factory;
    mapping(uint256 => address) private _buyer;

    function setSplit(uint256 jobId, uint256 splitId, address factory, address buyer) external {
        _factory[jobId][splitId] = factory;
        _buyer[jobId] = buyer;
    }

    function splitFactory(uint256 jobId, uint256 splitId) external view returns (address) {
        return _factory[jobId][splitId];
    }

    function payeeOf(uint256 jobId, uint256 splitId) external view returns (address, uint32) {
        return (_factory[jobId][splitId], 0);
    }

    function jobBuyer(uint256 jobId) external view returns (address) {
        return _buyer[jobId];
    }
}
