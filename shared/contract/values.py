"""The base classes of every body and representation, and the values they share:
money, evidence references, tracking, the actor of an event."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from .limits import EVIDENCE_URI_MAX, MAX_AMOUNT, Line
from .vocabulary import EvidenceKind


class RequestBody(BaseModel):
    """A request body: unknown fields are refused, so nobody sets `state`, `outcome` or
    ids through a body."""

    model_config = ConfigDict(extra="forbid")


class Representation(BaseModel):
    """A response: what the service answers, field for field."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Money(BaseModel):
    """An integer of minor units and an ISO 4217 code: `{"amount": 1999, "currency": "USD"}`."""

    model_config = ConfigDict(extra="forbid")

    amount: StrictInt = Field(description="minor units (cents for USD)", examples=[1999])
    currency: StrictStr = Field(
        pattern=r"^[A-Z]{3}$", description="ISO 4217 code", examples=["USD"]
    )


class MoneyIn(Money):
    """Money in a request: 0 to 10^11 minor units (MAX_AMOUNT) and an ISO 4217 code."""

    amount: StrictInt = Field(
        ge=0,
        le=MAX_AMOUNT,
        description=f"minor units (cents for USD), 0 to {MAX_AMOUNT}",
        examples=[1999],
    )


class EvidenceItem(BaseModel):
    """A reference to evidence held elsewhere; the service stores the reference, not bytes."""

    model_config = ConfigDict(extra="forbid")

    kind: EvidenceKind
    uri: StrictStr = Field(
        max_length=EVIDENCE_URI_MAX,
        pattern=r"^https?://[^\x00-\x20\x7F-\x9F/?#]+[^\x00-\x20\x7F-\x9F]*$",
        description="an https URL of the file (http only when the service runs in "
        "development), at most 2048 characters, no spaces or control characters",
        examples=["https://files.example/abc.jpg"],
    )
    sha256: StrictStr = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="64 lower-case hex digits of the content's SHA-256",
    )


class Tracking(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier: Line
    number: Line


class Actor(Representation):
    role: str
    id: str
