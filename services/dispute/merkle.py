"""RFC 9162 (RFC 6962) Merkle tree hashing, proofs and their verification; no storage.

Leaf hash `SHA-256(0x00 || data)`, node hash `SHA-256(0x01 || left || right)`, the empty
tree's root `SHA-256("")`. Proofs are the RFC's audit paths (lists of 32-byte hashes,
nearest the leaf first), so any RFC 6962/9162 verifier (Go's transparency-dev/merkle,
Sigstore's, Certificate Transparency's) checks them.

Proofs are built from *range roots*: each hash of a path is the root of a leaf range
`[start, end)`, and the root of a range is a fold of the perfect subtrees it splits into
(`perfect_parts`). A store then only has to answer "the root of the perfect subtree at
(level, index)": see services.dispute.transparency.tree.

`pymerkle` 7.0.0 was considered first: its roots and inclusion paths agree with the RFC,
but its consistency proofs are its own format (other hashes, plus rule and subset bits)
that RFC verifiers cannot check, and its storage model (a per-process LRU cache of
subtree roots over leaf ranges read from the store) would read half a million leaves for
the first proof at 1,000,000 events. The RFC algorithms are short; they are tested here
against the RFC 6962 reference vectors (tests/unit/test_merkle.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

Range = tuple[int, int]  # [start, end) of leaf indices
Perfect = tuple[int, int]  # (level, index): leaves [index << level, (index + 1) << level)


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1): the RFC's k."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes, directly (for tests and small trees)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


# Which ranges a proof is made of ------------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose roots form PATH(index, D[size]), nearest the leaf first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The ranges whose roots form PROOF(first, D[second]) (RFC 9162, 2.1.4.1)."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    ranges: list[Range] = []

    def subproof(m: int, start: int, end: int, complete: bool) -> None:
        n = end - start
        if m == n:
            if not complete:
                ranges.append((start, end))
            return
        k = split(n)
        if m <= k:
            subproof(m, start, start + k, complete)
            ranges.append((start + k, end))
        else:
            subproof(m - k, start + k, end, False)
            ranges.append((start, start + k))

    subproof(first, 0, second, True)
    return ranges


def perfect_parts(start: int, end: int) -> list[Perfect]:
    """The perfect subtrees a range of an RFC tree splits into, left to right. Every
    range a proof names starts at a multiple of a power of two that covers it."""
    parts: list[Perfect] = []
    while start < end:
        level = (end - start).bit_length() - 1
        # the largest aligned perfect subtree starting at `start` that fits
        while level > 0 and start % (1 << level):
            level -= 1
        parts.append((level, start >> level))
        start += 1 << level
    return parts


def fold(parts: Sequence[bytes]) -> bytes:
    """The root of a range from its perfect subtrees' roots, left to right: each is
    larger than the ones after it, so the tree joins them from the right."""
    root = parts[-1]
    for left in reversed(parts[:-1]):
        root = node_hash(left, root)
    return root


def range_roots(
    ranges: Sequence[Range], perfect: Callable[[Iterable[Perfect]], Mapping[Perfect, bytes]]
) -> list[bytes]:
    """The root of each range, asking `perfect` once for every perfect subtree needed."""
    split_ranges = [perfect_parts(s, e) for s, e in ranges]
    known = perfect({p for parts in split_ranges for p in parts})
    return [fold([known[p] for p in parts]) for parts in split_ranges]


# Verification (RFC 9162, 2.1.3.2 and 2.1.4.2) ----------------------------------------


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> bool:
    if first == second:
        return not proof and first_root == second_root
    if not 0 < first < second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# Appending: the right edge of the tree ------------------------------------------------


def append_to_frontier(
    frontier: list[tuple[int, bytes]], size: int, leaf: bytes
) -> list[tuple[int, int, bytes]]:
    """Appends leaf number `size` (0-based) to `frontier` (the roots of the perfect
    subtrees the tree of `size` leaves splits into, largest first, as (level, hash)),
    in place; returns the perfect nodes the append completed, as (level, index, hash)."""
    frontier.append((0, leaf))
    completed: list[tuple[int, int, bytes]] = []
    count = size + 1
    while len(frontier) > 1 and frontier[-1][0] == frontier[-2][0]:
        level, right = frontier.pop()
        _, left = frontier.pop()
        merged = node_hash(left, right)
        level += 1
        frontier.append((level, merged))
        completed.append((level, (count >> level) - 1, merged))
    return completed


def frontier_root(frontier: Sequence[tuple[int, bytes]]) -> bytes:
    if not frontier:
        return EMPTY_ROOT
    return fold([h for _, h in frontier])


def encode_frontier(frontier: Sequence[tuple[int, bytes]]) -> bytes:
    return b"".join(bytes([level]) + h for level, h in frontier)


def decode_frontier(data: bytes) -> list[tuple[int, bytes]]:
    return [(data[i], bytes(data[i + 1 : i + 33])) for i in range(0, len(data), 33)]
