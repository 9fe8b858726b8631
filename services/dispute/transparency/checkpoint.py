"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed-note envelopes.

A checkpoint (https://c2sp.org/tlog-checkpoint) is the text

    <origin>\\n<tree size, decimal>\\n<root hash, base64>\\n[extension lines]

and its signed note (https://c2sp.org/signed-note) adds a blank line and one line per
signature, `— <key name> <base64(key hash || Ed25519 signature of the text)>`. The key hash
is the first 4 bytes (big-endian) of SHA-256(key name || "\\n" || 0x01 || public key), as
golang.org/x/mod/sumdb/note computes it, so Go's `note.Open` and Sigstore's tooling read
these notes. Keys use that package's encodings too:

- signer key:   `PRIVATE+KEY+<name>+<hash, 8 hex>+<base64(0x01 || 32-byte seed)>`
- verifier key: `<name>+<hash, 8 hex>+<base64(0x01 || 32-byte public key)>`

The time of a checkpoint is an extension line, `time <RFC 3339 UTC>`. This module needs
no database: the offline verifier uses it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 0x01
DASH = "\u2014"  # the em dash that starts a signature line


class CheckpointError(ValueError):
    """A malformed key or note, or a signature that does not verify."""


def _valid_name(name: str) -> bool:
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() or unicodedata.category(c) == "Zs" for c in name)
    )


def key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    name: str
    public_key: bytes

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.public_key)

    def encode(self) -> str:
        raw = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_hash.hex()}+{raw}"

    @classmethod
    def decode(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or not _valid_name(parts[0]) or len(parts[1]) != 8:
            raise CheckpointError("a verifier key is <name>+<8 hex>+<base64 key>")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise CheckpointError("the verifier key is not base64") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise CheckpointError("the verifier key is not an Ed25519 key")
        verifier = cls(parts[0], raw[1:])
        if verifier.key_hash.hex() != parts[1].lower():
            raise CheckpointError("the verifier key's hash does not match its name and key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        if not _valid_name(name):
            raise CheckpointError(f"a key name has no spaces and no '+': {name!r}")
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = Ed25519PrivateKey.generate().private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )
        return cls(name, seed)

    @property
    def verifier(self) -> Verifier:
        key = Ed25519PrivateKey.from_private_bytes(self.seed).public_key()
        return Verifier(self.name, key.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def encode(self) -> str:
        raw = base64.b64encode(bytes([ALG_ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_hash.hex()}+{raw}"

    @classmethod
    def decode(cls, skey: str) -> Signer:
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _valid_name(parts[2]):
            raise CheckpointError("a signer key is PRIVATE+KEY+<name>+<8 hex>+<base64 key>")
        try:
            raw = base64.b64decode(parts[4], validate=True)
        except binascii.Error:
            raise CheckpointError("the signer key is not base64") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise CheckpointError("the signer key is not an Ed25519 key")
        signer = cls(parts[2], raw[1:])
        if signer.verifier.key_hash.hex() != parts[3].lower():
            raise CheckpointError("the signer key's hash does not match its name and key")
        return signer

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: datetime

    def body(self) -> str:
        when = self.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\ntime {when}\n"

    def sign(self, signer: Signer) -> str:
        """The signed note: the body, a blank line, the signature line."""
        if signer.name != self.origin:
            raise CheckpointError("the checkpoint's origin must be its signing key's name")
        return sign_note(self.body(), signer)


def sign_note(text: str, signer: Signer) -> str:
    """A signed note of `text` (which ends with a newline): as Go's `note.Sign`."""
    if not text.endswith("\n"):
        raise CheckpointError("a note's text ends with a newline")
    signature = signer.verifier.key_hash + signer.sign(text.encode())
    return f"{text}\n{DASH} {signer.name} {base64.b64encode(signature).decode()}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The text of a signed note if `verifier`'s key signed it; else CheckpointError."""
    text, signatures = parse_note(note)
    mine = [
        sig
        for name, khash, sig in signatures
        if name == verifier.name and khash == verifier.key_hash
    ]
    if not mine:
        raise CheckpointError(f"the note is not signed by the key {verifier.name}")
    if not any(verifier.verify(text.encode(), sig) for sig in mine):
        raise CheckpointError(f"the signature of {verifier.name} does not verify")
    return text


def parse_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Splits a signed note into its text and its signatures (name, key hash, signature)."""
    text, sep, signatures = note.rpartition("\n\n")
    if not sep or not text:
        raise CheckpointError("a signed note is text, a blank line, then signature lines")
    text += "\n"
    found = []
    for line in signatures.split("\n"):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH:
            raise CheckpointError(f"not a signature line: {line!r}")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise CheckpointError("a signature is not base64") from None
        if len(raw) < 5:
            raise CheckpointError("a signature is too short")
        found.append((parts[1], raw[:4], raw[4:]))
    if not found:
        raise CheckpointError("the note has no signature")
    return text, found


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint of a signed note, if `verifier`'s key signed it; else CheckpointError."""
    return parse_body(open_note(note, verifier))


def parse_body(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise CheckpointError("a checkpoint is origin, size and root hash lines")
    origin, size_text, root_text, *extensions = lines[:-1]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError("the checkpoint's tree size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise CheckpointError("the checkpoint's root hash is not base64") from None
    if len(root) != 32:
        raise CheckpointError("the checkpoint's root hash is not 32 bytes")
    when = None
    for line in extensions:
        if line.startswith("time "):
            try:
                when = datetime.strptime(line[5:], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            except ValueError:
                raise CheckpointError("the checkpoint's time is not RFC 3339 UTC") from None
    if when is None:
        raise CheckpointError("the checkpoint has no time line")
    return Checkpoint(origin, int(size_text), root, when)
