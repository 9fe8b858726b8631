"""Signed checkpoints read and written as Go's golang.org/x/mod/sumdb/note does: its own
example key and note (Ed25519 signatures are deterministic, so ours must be that note
byte for byte), and the C2SP tlog-checkpoint body."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from services.dispute.transparency.checkpoint import (
    Checkpoint,
    CheckpointError,
    Signer,
    Verifier,
    open_checkpoint,
    open_note,
    sign_note,
)

# From the documentation of golang.org/x/mod/sumdb/note.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
    "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_go_s_keys_and_note_round_trip_byte_for_byte() -> None:
    signer = Signer.decode(GO_SIGNER)
    assert signer.encode() == GO_SIGNER
    assert signer.verifier.encode() == GO_VERIFIER
    assert Verifier.decode(GO_VERIFIER) == signer.verifier
    assert sign_note(GO_TEXT, signer) == GO_NOTE
    assert open_note(GO_NOTE, Verifier.decode(GO_VERIFIER)) == GO_TEXT


@pytest.mark.parametrize(
    "bad",
    [
        GO_NOTE.replace("cryptography", "cryptographY"),  # changed text
        GO_NOTE.replace("x08go", "x08gp"),  # changed signature
        GO_NOTE.replace("\u2014 PeterNeumann", "\u2014 PeterNeuman"),  # another key name
        GO_TEXT,  # no signature
    ],
)
def test_a_changed_note_does_not_open(bad: str) -> None:
    with pytest.raises(CheckpointError):
        open_note(bad, Verifier.decode(GO_VERIFIER))


def test_keys_with_a_wrong_hash_or_algorithm_are_refused() -> None:
    with pytest.raises(CheckpointError, match="hash"):
        Verifier.decode(GO_VERIFIER.replace("c74f20a3", "c74f20a4"))
    with pytest.raises(CheckpointError, match="hash"):
        Signer.decode(GO_SIGNER.replace("c74f20a3", "00000000"))
    with pytest.raises(CheckpointError):
        Verifier.decode("PeterNeumann+c74f20a3+" + base64.b64encode(b"\x02" + bytes(32)).decode())
    with pytest.raises(CheckpointError):
        Signer.generate("has space")


def test_a_checkpoint_is_the_c2sp_body_signed_by_its_origin() -> None:
    signer = Signer.generate("example.com/log")
    at = datetime(2026, 11, 30, 10, 41, 25, tzinfo=UTC)
    root = bytes(range(32))
    note = Checkpoint("example.com/log", 1234, root, at).sign(signer)
    body = f"example.com/log\n1234\n{base64.b64encode(root).decode()}\ntime 2026-11-30T10:41:25Z\n"
    assert note.startswith(body + "\n\u2014 example.com/log ")
    raw = base64.b64decode(note.rstrip("\n").rsplit(" ", 1)[1])
    assert raw[:4] == signer.verifier.key_hash and len(raw) == 4 + 64
    assert open_checkpoint(note, signer.verifier) == Checkpoint("example.com/log", 1234, root, at)
    with pytest.raises(CheckpointError):
        open_checkpoint(note.replace("1234", "1235"), signer.verifier)
    with pytest.raises(CheckpointError):
        open_checkpoint(note, Signer.generate("example.com/log").verifier)  # same name
    with pytest.raises(CheckpointError, match="origin"):
        Checkpoint("other.example/log", 1, root, at).sign(signer)
