"""Test harness: real services on loopback for the integration tests.

The registry part (registry, tokenserver, certs, htpasswd, images, seed, skopeo, procs) starts CNCF
distribution in four modes and seeds it with real images. It is independent of the agent's own code on
purpose: the harness and `skopeo` are the oracle the agent's registry client is compared against.
"""
