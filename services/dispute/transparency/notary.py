"""The notary: follows the event feed into the Merkle tree and signs checkpoints.

Like the projector it polls `recorder.select_notifications` after the tree's position;
each batch's leaves, nodes and the new position commit in one transaction
(`TreeStore.append`), so killing it anywhere appends nothing twice and loses nothing.
Every `every_events` new leaves, or `every_seconds` after the first leaf not yet signed,
it signs a checkpoint of the tree and publishes it outside the database (a directory of
files, NATS JetStream), after checking that the tree still extends the newest
checkpoint published there: a tree rolled back or rewritten in the database is refused
(logged, never signed), whoever did it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.dispute import merkle
from services.dispute.infrastructure.pool import TRANSIENT_ERRORS, first_line

from .checkpoint import Checkpoint, CheckpointError, Signer, Verifier, open_checkpoint
from .tree import PositionMoved, TreeState, TreeStore, leaves_for

log = logging.getLogger(__name__)

# While the database is away, the notary tries again after a pause that doubles from the
# first to the last of these, so it follows again within about RETRY_MAX_SECONDS of the
# database's return.
RETRY_FIRST_SECONDS = 0.25
RETRY_MAX_SECONDS = 2.0

DEV_KEY_NAME = "localhost/disputes-dev"
DEV_KEY_FILE = "checkpoint-dev.key"


class RefusedCheckpoint(Exception):
    """The tree does not extend the newest published checkpoint: nothing is signed."""


def signer_for(settings: Any) -> Signer:
    """The configured key; outside production, a development key kept in DATA_DIR
    (made on first use: `make run` makes it before starting anything)."""
    if settings.checkpoint_key is not None:
        return Signer.decode(settings.checkpoint_key.get_secret_value())
    if settings.environment == "production":
        raise CheckpointError("DISPUTES_CHECKPOINT_KEY must be set in production")
    path = Path(settings.data_dir) / DEV_KEY_FILE
    return dev_signer(path)


def dev_signer(path: Path) -> Signer:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            text = path.read_text().strip()
            if text:
                return Signer.decode(text)
            time.sleep(0.05)
        raise CheckpointError(f"{path} is empty") from None
    signer = Signer.generate(DEV_KEY_NAME)
    with os.fdopen(fd, "w") as out:
        out.write(signer.encode() + "\n")
    return signer


class CheckpointDirectory:
    """Checkpoints as files `<tree size, 20 digits>.checkpoint`, each written once
    (never replaced): an append-only record outside the database."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def sizes(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted(
            int(p.name.removesuffix(".checkpoint"))
            for p in self.path.glob("*.checkpoint")
            if p.name.removesuffix(".checkpoint").isdigit()
        )

    def read(self, size: int) -> str | None:
        try:
            return (self.path / f"{size:020d}.checkpoint").read_text()
        except FileNotFoundError:
            return None

    def latest(self) -> str | None:
        sizes = self.sizes()
        return self.read(sizes[-1]) if sizes else None

    def publish(self, size: int, note: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / f"{size:020d}.checkpoint"
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if target.read_text() != note:
                # Two different trees of one size were signed: never hide that.
                raise RefusedCheckpoint(f"{target} exists with another checkpoint") from None
            return
        with os.fdopen(fd, "w") as out:
            out.write(note)
            out.flush()
            os.fsync(out.fileno())


class NatsPublisher:
    """Publishes each checkpoint to a JetStream stream (deduplicated by tree size)."""

    def __init__(
        self, url: str, stream: str = "DISPUTES_CHECKPOINTS", subject: str = "disputes.checkpoints"
    ) -> None:
        import asyncio

        self.url = url
        self.stream = stream
        self.subject = subject
        self.loop = asyncio.new_event_loop()
        self.nc: Any = None

    async def _publish(self, size: int, origin: str, note: str) -> None:
        import nats

        if self.nc is None or self.nc.is_closed:
            self.nc = await nats.connect(self.url, connect_timeout=2, max_reconnect_attempts=1)
        js = self.nc.jetstream(timeout=5)
        try:
            await js.stream_info(self.stream)
        except Exception:
            await js.add_stream(name=self.stream, subjects=[self.subject])
        await js.publish(self.subject, note.encode(), headers={"Nats-Msg-Id": f"{origin}/{size}"})

    def publish(self, size: int, origin: str, note: str) -> None:
        self.loop.run_until_complete(self._publish(size, origin, note))

    def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            self.loop.run_until_complete(self.nc.close())
        self.loop.close()


class Notary:
    def __init__(
        self,
        app: Any,
        store: TreeStore,
        signer: Signer,
        directory: CheckpointDirectory,
        *,
        nats: NatsPublisher | None = None,
        every_events: int = 1000,
        every_seconds: float = 10.0,
        batch_size: int = 1000,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.store = store
        self.signer = signer
        self.directory = directory
        self.nats = nats
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.batch_size = batch_size
        self.now = now
        self.monotonic = monotonic
        self._unsigned_since: float | None = None
        self._nats_pending: list[tuple[int, str]] = []  # published to the files, not NATS yet
        self.refused: str | None = None  # why the last checkpoint was refused, if it was
        self._down_since: float | None = None  # when the database went away, if it is

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    def run_once(self) -> int:
        """Appends at most one batch; returns how many events it appended."""
        state = self.store.state()
        notifications = self.app.recorder.select_notifications(
            start=state.position + 1, limit=self.batch_size
        )
        if not notifications:
            return 0
        after, leaves, nodes = leaves_for(state, [(n.id, n) for n in notifications])
        try:
            self.store.append(state, after, leaves, nodes)
        except PositionMoved as moved:
            log.info("%s; reading again", moved)
            return 0
        return len(leaves)

    def catch_up(self) -> int:
        total = 0
        while appended := self.run_once():
            total += appended
        return total

    def due(self, state: TreeState, signed: int) -> bool:
        if state.size <= signed:
            self._unsigned_since = None
            return False
        if self._unsigned_since is None:
            self._unsigned_since = self.monotonic()
        return (
            state.size - signed >= self.every_events
            or self.monotonic() - self._unsigned_since >= self.every_seconds
        )

    def checkpoint(self, *, force: bool = False) -> Checkpoint | None:
        """Signs and publishes a checkpoint of the tree if one is due (or `force`)."""
        self._flush_nats()
        state = self.store.state()
        latest = self.latest_published()
        signed = latest.size if latest is not None else 0
        if latest is not None:  # every time: a tree rolled back is refused at once
            self.check_extends(latest, state)
        if not (force and state.size > signed) and not self.due(state, signed):
            return None
        checkpoint = Checkpoint(self.signer.name, state.size, state.root, self.now())
        note = checkpoint.sign(self.signer)
        self.store.add_checkpoint(state.size, state.root, note)
        self.directory.publish(state.size, note)
        if self.nats is not None:
            self._nats_pending.append((state.size, note))
            self._flush_nats()
        self._unsigned_since = None
        log.info("checkpoint: %s events, root %s", state.size, state.root.hex())
        return checkpoint

    def _flush_nats(self) -> None:
        """Publishes the checkpoints NATS has not taken yet, oldest first (JetStream
        drops a repeat by its message id); what fails is tried again next time."""
        while self.nats is not None and self._nats_pending:
            size, note = self._nats_pending[0]
            try:
                self.nats.publish(size, self.signer.name, note)
            except Exception as error:  # the file is the record; NATS is a copy
                log.warning("checkpoint %s not published to NATS yet: %s", size, error)
                return
            self._nats_pending.pop(0)

    def latest_published(self) -> Checkpoint | None:
        note = self.directory.latest()
        if note is None:
            return None
        return open_checkpoint(note, self.verifier)

    def check_extends(self, published: Checkpoint, state: TreeState) -> None:
        if state.size < published.size:
            raise RefusedCheckpoint(
                f"the tree has {state.size} events, fewer than the {published.size} of the "
                "newest published checkpoint: it was rolled back"
            )
        if state.size == published.size:
            ok = state.root == published.root
        else:
            proof = self.store.consistency_proof(published.size, state.size)
            ok = merkle.verify_consistency(
                published.size, state.size, proof, published.root, state.root
            )
        if not ok:
            raise RefusedCheckpoint(
                f"the tree of {state.size} events does not extend the published checkpoint "
                f"of {published.size}: its history was rewritten"
            )

    def run_forever(self, stop: threading.Event, poll_seconds: float = 0.5) -> None:
        """Follows the feed and signs checkpoints until `stop` is set. A transient
        storage error (the database away; the batch rolled back) is retried after a
        pause doubling from RETRY_FIRST_SECONDS to RETRY_MAX_SECONDS, never giving up;
        one line says when the database went and one when it is back."""
        retry = RETRY_FIRST_SECONDS
        while not stop.is_set():
            try:
                appended = self.run_once()
                self._database_back()
                self.checkpoint()
            except TRANSIENT_ERRORS as error:
                self._database_gone(error)
                stop.wait(retry)
                retry = min(retry * 2, RETRY_MAX_SECONDS)
                continue
            except (RefusedCheckpoint, CheckpointError) as refused:
                self.refused = str(refused)
                log.error("checkpoint refused: %s", refused)
                stop.wait(max(poll_seconds, 5.0))
                continue
            retry = RETRY_FIRST_SECONDS
            self.refused = None
            if not appended:
                stop.wait(poll_seconds)

    def _database_gone(self, error: Exception) -> None:
        if self._down_since is None:
            self._down_since = self.monotonic()
            log.warning(
                "database unavailable (%s); retrying every %.2f to %.0f s",
                first_line(error),
                RETRY_FIRST_SECONDS,
                RETRY_MAX_SECONDS,
            )
        else:
            log.debug("database still unavailable: %s", first_line(error))

    def _database_back(self) -> None:
        if self._down_since is not None:
            log.warning(
                "database available again after %.1f s", self.monotonic() - self._down_since
            )
            self._down_since = None


def build(app: Any, settings: Any, **kwargs: Any) -> Notary:
    """A notary for the application's store, with the settings' key and publishers."""
    store = TreeStore(app.recorder.datastore)
    if settings.create_tables:
        store.create_table()
    nats = (
        NatsPublisher(
            settings.nats_url, settings.checkpoint_nats_stream, settings.checkpoint_nats_subject
        )
        if settings.nats_url
        else None
    )
    return Notary(
        app,
        store,
        signer_for(settings),
        CheckpointDirectory(settings.checkpoints_path),
        nats=nats,
        every_events=settings.checkpoint_every_events,
        every_seconds=settings.checkpoint_every_seconds,
        **kwargs,
    )


__all__: Sequence[str] = ["CheckpointDirectory", "Notary", "RefusedCheckpoint", "build"]
