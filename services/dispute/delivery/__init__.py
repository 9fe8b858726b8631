"""Events out: signed webhooks to subscribers, and publication to NATS JetStream.

- `store`: the subscriptions, their positions and their delivery log (tables in the
  events' database, SQLite or PostgreSQL).
- `urls`: which destinations a webhook may have (no private or loopback addresses).
- `payloads`: an event as the body both deliveries carry.
- `webhooks`: the delivery process's loop: claims a subscription, delivers what follows
  its position in order, records each attempt with the position in one transaction.
- `jetstream`: the JetStream relay (with `DISPUTES_NATS_URL`).

Run the delivery process with `python -m services.dispute.delivery`.
"""
