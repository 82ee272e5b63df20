"""The chain audit: rebuild a job from chain events and evidence bundles, and check it."""
