"""The shapes of the service's 200 answers, for the OpenAPI document only (handlers build the
JSON themselves; tests hold the two together)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RejectedEvent(BaseModel):
    """An event of the request that was not accepted (it went to the dead-letter topic)."""

    index: int = Field(description="Position in the batch (0 for a single event).")
    messageId: str | None
    reason: str = Field(description='"<failure type>: <messages>"')


class IngestAnswer(BaseModel):
    """Every accepted event and every bad row is acknowledged by Kafka."""

    success: bool = True
    accepted: int
    dropped: int = Field(description="Events without analytics consent on a source needing it.")
    rejected: list[RejectedEvent]


class Contribution(BaseModel):
    """One recent scored event behind a candidate's score."""

    messageId: str
    event: str
    pillar: str
    channel: str
    points: float = Field(description="As awarded (channel multiplier applied).")
    currentPoints: float = Field(description="What they are worth at asOf.")
    at: str


class CandidateScore(BaseModel):
    """A candidate's score now, and why."""

    tenantId: str
    candidateId: str
    score: int = Field(ge=1, le=100)
    tier: str
    raw: float
    pillars: dict[str, float]
    channels: dict[str, float]
    sequence: int
    asOf: str
    rulesVersion: str
    lastEventAt: str | None
    contributions: list[Contribution]


class RankedCandidate(BaseModel):
    """A leaderboard entry."""

    candidateId: str
    score: int
    tier: str
    raw: float


class LeaderboardPage(BaseModel):
    """Candidates by current score, highest first; nextCursor is null on the last page."""

    candidates: list[RankedCandidate]
    nextCursor: str | None
    asOf: str


class TierCounts(BaseModel):
    """Number of candidates in each tier now, lowest tier first."""

    tiers: dict[str, int]
    asOf: str


def ok(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entry of a 200 answer shaped as ``model``."""
    return {200: {"description": model.__doc__ or "OK", "model": model}}
