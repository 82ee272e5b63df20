"""Ethereum plumbing: connections, devnet, toolchain, compiler, transactions, reverts, deploying."""
