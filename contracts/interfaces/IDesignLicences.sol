// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title IDesignLicences
 * @notice How an order checks that its design is licensed to the buyer and what royalty
 * the designer is owed. Implemented by DesignRegistry.
 */
interface IDesignLicences {
    /**
     * @notice The licence of design `designId` to `licensee`.
     * @return active    true while the licence is granted, unrevoked and the design unrevoked
     * @return designer  the design's registrant, who is paid the royalty
     * @return royaltyPpm the designer's share of an order's price, on a 1e6 scale
     */
    function licenceOf(bytes32 designId, address licensee)
        external
        view
        returns (bool active, address designer, uint32 royaltyPpm);
}
