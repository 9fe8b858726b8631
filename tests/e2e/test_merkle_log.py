"""The Merkle log's notary as a real process beside the stack: it signs checkpoints,
publishes them to the checkpoint directory and to NATS JetStream, and the public API
serves them and their proofs through the gateway (issue 17)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.dispute import merkle
from services.dispute.transparency.checkpoint import Signer, open_checkpoint
from tests.conftest import in_ci

from .stack import Stack
from .test_cases import Case

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

NATS_URL = "nats://127.0.0.1:4222"


def nats_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1):
            return True
    except OSError:
        return False


async def checkpoints_in_nats(stream: str, subject: str) -> list[str]:
    import nats
    import nats.errors
    import nats.js.errors

    nc = await nats.connect(NATS_URL, connect_timeout=2)
    try:
        js = nc.jetstream()
        try:
            sub = await js.pull_subscribe(subject, stream=stream)
            messages = await sub.fetch(100, timeout=2)
        except (nats.js.errors.NotFoundError, nats.errors.TimeoutError):
            return []  # not created yet, or nothing in it yet
        return [m.data.decode() for m in messages]
    finally:
        await nc.close()


def wait_for(check: Any, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("not in time")
        time.sleep(0.2)


def test_the_notary_signs_and_publishes_checkpoints_served_through_the_gateway(
    stack: Stack,
) -> None:
    use_nats = nats_answers()
    if not use_nats and not in_ci():
        pytest.skip("no NATS answers on 127.0.0.1:4222")
    assert use_nats, "CI=true: NATS must answer on 127.0.0.1:4222"
    tag = uuid.uuid4().hex[:8]
    stream, subject = f"E2E_{tag.upper()}", f"e2e.checkpoints.{tag}"
    settings = {
        "DISPUTES_CHECKPOINT_EVERY_SECONDS": "0.3",
        "DISPUTES_CHECKPOINT_NATS_STREAM": stream,
        "DISPUTES_CHECKPOINT_NATS_SUBJECT": subject,
        **({"DISPUTES_NATS_URL": NATS_URL} if use_nats else {}),
    }
    stack.extra_env.update(settings)
    stack.start("notary")
    try:
        with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
            case = Case(client, stack)
            dispute = case.opened("damaged")
            auditor = {"Authorization": f"Bearer {stack.token('auditor', 'au-1')}"}

            def latest() -> Any:
                reply = client.get("/v1/audit/checkpoint", headers=auditor)
                return reply.json() if reply.status_code == 200 else None

            checkpoint = wait_for(latest)
            directory = Path(stack.env()["DISPUTES_CHECKPOINT_DIR"])
            name = f"{checkpoint['tree_size']:020d}.checkpoint"
            assert (directory / name).read_text() == checkpoint["note"]
            key = (Path(stack.env()["DISPUTES_DATA_DIR"]) / "checkpoint-dev.key").read_text()
            verifier = Signer.decode(key).verifier
            signed = open_checkpoint(checkpoint["note"], verifier)
            proof = client.get(
                "/v1/audit/inclusion",
                params={"aggregate_id": dispute["id"], "version": 1},
                headers=auditor,
            ).json()
            assert merkle.verify_inclusion(
                proof["leaf_index"], signed.size, bytes.fromhex(proof["leaf_hash"]),
                [bytes.fromhex(p) for p in proof["proof"]], signed.root,
            )  # fmt: skip
            metrics = httpx.get(f"http://127.0.0.1:{stack.notary_metrics_port}/metrics").text
            assert "disputes_merkle_tree_size" in metrics
            assert "disputes_merkle_checkpoint_refused 0.0" in metrics
            buyer = client.get("/v1/audit/checkpoint", headers=case.buyer.headers)
            assert buyer.status_code == 403
            verification = case.buyer.get(f"/v1/disputes/{dispute['id']}/verification").json()
            assert verification["intact"] is True and verification["proved_events"] >= 1
        if use_nats:
            try:
                wait_for(
                    lambda: checkpoint["note"] in asyncio.run(checkpoints_in_nats(stream, subject))
                )
            except AssertionError:
                raise AssertionError(f"not in JetStream\n{stack.tail()}") from None
    finally:
        stack.stop("notary")
        for name in settings:
            stack.extra_env.pop(name, None)
