"""RFC 6962 / 9162 Merkle hashing and proofs against the RFC 6962 reference vectors
(Certificate Transparency's merkle_tree_test), then every proof of many tree sizes."""

from __future__ import annotations

import hashlib
import random

import pytest

from services.dispute import merkle

INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
LEAVES = [merkle.leaf_hash(d) for d in INPUTS]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, audit path)
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
# (first size, second size, proof)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


def from_leaves(leaves: list[bytes]):  # type: ignore[no-untyped-def]
    """A `perfect` lookup over an in-memory leaf list."""

    def perfect(wanted):  # type: ignore[no-untyped-def]
        return {(lv, i): merkle.root_of(leaves[i << lv : (i + 1) << lv]) for lv, i in wanted}

    return perfect


def test_the_hashes_and_roots_are_the_rfcs() -> None:
    assert merkle.EMPTY_ROOT.hex() == ROOTS[0] == hashlib.sha256(b"").hexdigest()
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    for size in range(9):
        assert merkle.root_of(LEAVES[:size]).hex() == ROOTS[size], size


def test_the_frontier_gives_every_root_and_the_perfect_nodes() -> None:
    frontier: list[tuple[int, bytes]] = []
    completed = {}
    for size, leaf in enumerate(LEAVES):
        for level, index, digest in merkle.append_to_frontier(frontier, size, leaf):
            completed[(level, index)] = digest
        assert merkle.frontier_root(frontier).hex() == ROOTS[size + 1]
        assert merkle.decode_frontier(merkle.encode_frontier(frontier)) == frontier
    assert completed[(3, 0)].hex() == ROOTS[8]
    assert completed[(2, 1)] == merkle.root_of(LEAVES[4:8])
    assert set(completed) == {(1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (3, 0)}


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_reference(index: int, size: int, path: list[str]) -> None:
    ranges = merkle.inclusion_ranges(index, size)
    proof = merkle.range_roots(ranges, from_leaves(LEAVES))
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(ROOTS[size])
    assert merkle.verify_inclusion(index, size, LEAVES[index], proof, root)
    assert not merkle.verify_inclusion(index, size, LEAVES[(index + 1) % 8], proof, root)
    assert not merkle.verify_inclusion(index, 2 * size, LEAVES[index], proof, root)
    assert not merkle.verify_inclusion(index, size, LEAVES[index], proof[:-1], root)


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_reference(first: int, second: int, path: list[str]) -> None:
    proof = merkle.range_roots(merkle.consistency_ranges(first, second), from_leaves(LEAVES))
    assert [p.hex() for p in proof] == path
    old, new = bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second])
    assert merkle.verify_consistency(first, second, proof, old, new)
    if first != second:
        assert not merkle.verify_consistency(first, second, proof, new, new)
        assert not merkle.verify_consistency(first, second, proof[1:], old, new)


def test_every_proof_of_every_size_up_to_40_verifies_and_a_changed_leaf_does_not() -> None:
    rng = random.Random(6962)
    leaves = [merkle.leaf_hash(rng.randbytes(rng.randint(0, 9))) for _ in range(40)]
    perfect = from_leaves(leaves)
    roots = [merkle.root_of(leaves[:n]) for n in range(41)]
    for size in range(1, 41):
        for index in range(size):
            proof = merkle.range_roots(merkle.inclusion_ranges(index, size), perfect)
            assert merkle.verify_inclusion(index, size, leaves[index], proof, roots[size])
            assert not merkle.verify_inclusion(index, size, b"x" * 32, proof, roots[size])
        for first in range(1, size + 1):
            proof = merkle.range_roots(merkle.consistency_ranges(first, size), perfect)
            assert merkle.verify_consistency(first, size, proof, roots[first], roots[size])
            if first < size:
                forged = [*leaves[: first - 1], b"y" * 32]
                assert not merkle.verify_consistency(
                    first, size, proof, merkle.root_of(forged), roots[size]
                )
