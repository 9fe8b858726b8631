"""`python -m services.dispute.transparency [run]`: follow the feed into the Merkle tree
and sign checkpoints until SIGINT or SIGTERM. `... key`: print the verifier key (for
auditors; it is public). `... checkpoint`: catch up and sign one checkpoint now."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from pydantic import ValidationError

from shared import observability
from shared.config_errors import describe

from ..application import DisputeApplication
from ..metrics import (
    MERKLE_CHECKPOINT_REFUSED,
    MERKLE_CHECKPOINT_SIZE,
    MERKLE_LAG_EVENTS,
    MERKLE_TREE_SIZE,
    Sampler,
    sample_pool,
)
from ..settings import load_settings
from ..startup import check_database
from .checkpoint import CheckpointError
from .notary import Notary, build, signer_for

log = logging.getLogger("services.dispute.transparency")


def _sample(notary: Notary) -> None:
    """The notary's gauges: the tree's size and lag, the newest checkpoint, a refusal."""
    state = notary.store.state()
    MERKLE_TREE_SIZE.set(state.size)
    stored = notary.app.recorder.max_notification_id() or 0
    MERKLE_LAG_EVENTS.set(max(0, stored - state.position))
    sizes = notary.directory.sizes()
    MERKLE_CHECKPOINT_SIZE.set(sizes[-1] if sizes else 0)
    MERKLE_CHECKPOINT_REFUSED.set(1 if notary.refused else 0)
    sample_pool(notary.app)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.dispute.transparency")
    parser.add_argument("command", nargs="?", choices=["run", "key", "checkpoint"], default="run")
    parser.add_argument("--poll-seconds", type=float, default=None, help="idle wait")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = load_settings()
        signer = signer_for(settings)
    except (ValidationError, CheckpointError) as exc:
        why = describe(exc) if isinstance(exc, ValidationError) else str(exc)
        print(f"notary: bad configuration:\n{why}", file=sys.stderr)
        return 2  # `make run` does not restart a child that exits with 2
    if args.command == "key":
        print(signer.verifier.encode())
        return 0
    observability.setup_logging("notary", settings)
    check_database(settings, "notary")
    # One batch at a time: two connections are plenty (not DISPUTES_THREADS of them).
    env = {**settings.persistence_env(), "POSTGRES_POOL_SIZE": "2"}
    app = DisputeApplication(env=env, policy=settings.policy)
    notary = build(app, settings)
    try:
        if args.command == "checkpoint":
            notary.catch_up()
            made = notary.checkpoint(force=True)
            print(notary.directory.latest() if made or notary.directory.latest() else "")
            return 0
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: stopping after the current batch", signum)
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        poll = args.poll_seconds if args.poll_seconds is not None else settings.worker_poll_seconds
        observability.serve_metrics(
            settings.host, settings.notary_metrics_port, "DISPUTES_NOTARY_METRICS_PORT"
        )
        sampler = Sampler(lambda: _sample(notary)).start()
        log.info(
            "notarising %s; checkpoints to %s; verifier key %s",
            app.name,
            notary.directory.path,
            notary.verifier.encode(),
        )
        notary.run_forever(stop, poll_seconds=poll)
        sampler.stop()
        log.info("stopped")
        return 0
    finally:
        if notary.nats is not None:
            notary.nats.close()
        app.close()


if __name__ == "__main__":
    sys.exit(main())
