"""Deploy a Consortium whose founding council is accounts[0] alone.

    brownie run scripts/deploy.py [--network <id>]

Quorum 1 and a 7-day proposal lifetime: enough for a devnet or a demo; a real consortium
passes its own council, quorum and lifetime to the constructor.
"""

from brownie import Consortium, accounts

PROPOSAL_TTL = 7 * 24 * 3600  # seconds


def main():
    deployer = accounts[0]
    consortium = Consortium.deploy([deployer], 1, PROPOSAL_TTL, {"from": deployer})
    print(f"Consortium deployed at {consortium.address}")
    return consortium
