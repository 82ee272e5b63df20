"""Orders: jobs split across factories, their EIP-712 consents, escrow and settlement."""
