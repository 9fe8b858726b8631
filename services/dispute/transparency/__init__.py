"""Audit evidence that survives a database administrator: a Merkle log of every event.

- `checkpoint`: signed checkpoints (C2SP tlog-checkpoint in a C2SP signed note, Ed25519);
- `tree`: the tree's tables (leaves, stored nodes, position, checkpoints) and proofs;
- `notary`: the process that follows the feed into the tree and signs checkpoints;
- `services.dispute.merkle`: the RFC 9162 hashing and proofs (no storage).

Run the notary with `python -m services.dispute.transparency`; print the verifier key
auditors pin with `python -m services.dispute.transparency key`.
"""
