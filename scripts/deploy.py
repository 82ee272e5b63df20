"""Deploy cofab's contracts with brownie: the same plan a node deploys (ledger/eth/deployment.py).

    brownie run scripts/deploy.py                          # development: brownie's anvil
    brownie run scripts/deploy.py main <account-id> --network <id>   # any other network

The founding council is the deploying account alone (quorum 1, proposals open for 7 days);
on a development chain a demo stablecoin is deployed and funded too. The record of the
deployment is written to <data dir>/deployments/<chain id>.json ($COFAB_DATA_DIR, else
./.cofab), where `cofab node start --rpc-url ...` finds and checks it.
"""

from brownie import accounts, web3
from eth_account import Account

from ledger.core.settings import data_dir
from ledger.eth.chain import Backend, attach
from ledger.eth.deployment import GovernanceParams, deploy, save
from ledger.eth.tx import Sender


def main(account_id=None):
    from brownie._config import CONFIG  # here: brownie hashes module-level project imports

    development = CONFIG.network_type == "development"
    chain = attach(
        web3.provider.endpoint_uri, backend=Backend.DEVNET if development else Backend.RPC
    )
    if account_id is not None:
        signer = Account.from_key(accounts.load(account_id).private_key)
    elif development:
        signer = chain.faucet  # anvil's first account: brownie's accounts[0]
    else:
        raise SystemExit("name the deploying account: brownie run scripts/deploy.py main <id>")
    sender = Sender(chain, signer)
    deployment = deploy(
        chain,
        sender,
        GovernanceParams(council=(signer.address,)),
        progress=lambda name: print(f"deploying {name}"),
    )
    path = save(data_dir(), deployment)
    for name, record in deployment.contracts.items():
        print(f"{name:15} {record.address}")
    print(f"recorded in {path}")
    return deployment
