"""The pipeline one tenant's chain runs: chain, compute, route, policy, quality gate, outbox, versions, drift."""
