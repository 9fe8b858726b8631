"""The opaque cursors of `GET /v1/disputes`: a page's last (opened_at, dispute id)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime

from ..domain import InvalidInput


def encode_cursor(opened_at: datetime, dispute_id: str) -> str:
    raw = json.dumps([opened_at.astimezone(UTC).isoformat(), dispute_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_CURSOR_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
CURSOR_MAX = 512


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; anything but a cursor this API gave is refused (422),
    whatever it holds (deep nesting, NUL, a time out of range...)."""
    refused = InvalidInput("cursor", "opaque_cursor", "cursor is not one this API gave")
    if not isinstance(cursor, str) or len(cursor) > CURSOR_MAX:
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if not raw.startswith(b'["'):  # the shape encode_cursor writes, before parsing
            raise ValueError(cursor)
        opened_at, dispute_id = json.loads(raw)
        at = datetime.fromisoformat(opened_at)
        if at.tzinfo is None or not isinstance(dispute_id, str):
            raise ValueError(cursor)
        if not _CURSOR_ID.fullmatch(dispute_id):
            raise ValueError(cursor)
        at = at.astimezone(UTC)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise refused from None
    except OverflowError:
        raise refused from None
    return at, dispute_id
