"""The Kafka records of an erasure (pure), the same from ingest's ``DELETE`` and from the scorer.

``INGEST_SOURCE`` is the ``ce_source`` of the requests ingest writes (the scorer's are
``score_records.SOURCE``, as are every score record's).

Ingest publishes them once it wiped the candidate in Redis, with one ``ErasureRequest`` per erased
id on the interactions topic; the scorer, on reaching a request in the id's partition, erases the
id again and publishes them once more, after the records of the events before the request.
"""

from __future__ import annotations

from datetime import datetime

import orjson

from engagement.kafka.cloudevents import binary_headers, ce_type
from engagement.kafka.score_records import OutRecord, record
from engagement.kafka.topics import candidate_key
from engagement.model.records import PILLARS, Cause, ScoreChange, format_time
from engagement.model.rules import Rules
from engagement.model.score_views import Erasure

INGEST_SOURCE = "/engagement/ingest"


def erasure_records(
    erasure: Erasure,
    rules: Rules,
    *,
    changes_topic: str,
    latest_topic: str,
    sequence: int,
    now: datetime,
) -> list[OutRecord]:
    """The erasure record (``cause{type: erasure}``, ``sequence``), then a tombstone on the latest
    topic for the candidate and for each id merged into it."""
    tenant, candidate_id = erasure.tenant_id, erasure.candidate_id
    change = ScoreChange(
        tenantId=tenant,
        candidateId=candidate_id,
        score=1,
        previousScore=None,
        tier=rules.tiers[0].name,
        raw=0.0,
        pillars=dict.fromkeys(PILLARS, 0.0),
        channels={},
        sequence=sequence,
        asOf=now,
        rulesVersion=rules.version,
        cause=Cause(type="erasure"),
    )
    records = [record(changes_topic, change, "score.changed")]
    for cand in (candidate_id, *erasure.merged_ids):
        records.append(OutRecord(latest_topic, candidate_key(tenant, cand).encode(), None, []))
    return records


def erasure_requests(
    erasure: Erasure,
    *,
    interactions_topic: str,
    sequence: int,
    now: datetime,
    source: str,
    merged_only: bool = False,
) -> list[OutRecord]:
    """One ``ErasureRequest`` per erased id (the candidate unless ``merged_only``, then each id
    merged into it), keyed as that id's events are; the candidate's carries ``sequence``, a
    merged id's 1 (the scorer raises either past what it finds). ``source``: the ``ce_source``."""
    ids = erasure.merged_ids if merged_only else (erasure.candidate_id, *erasure.merged_ids)
    return [
        erasure_request(
            erasure.tenant_id,
            cand,
            sequence=sequence if cand == erasure.candidate_id else 1,
            now=now,
            interactions_topic=interactions_topic,
            source=source,
        )
        for cand in ids
    ]


def erasure_request(
    tenant: str,
    candidate: str,
    *,
    sequence: int,
    now: datetime,
    interactions_topic: str,
    source: str,
    idle_before: datetime | None = None,
) -> OutRecord:
    """The ``ErasureRequest`` of one id, keyed as its events are (``idle_before``: an expiry,
    which erases the id only if it is still idle then)."""
    value: dict[str, object] = {
        "type": "erasure",
        "tenantId": tenant,
        "candidateId": candidate,
        "sequence": sequence,
        "requestedAt": format_time(now),
    }
    kind = "erasure"
    if idle_before is not None:
        value["idleBefore"] = format_time(idle_before)
        kind = "expiry"
    key = candidate_key(tenant, candidate)
    headers = binary_headers(
        event_id=f"{kind}:{key}:{sequence}:{value['requestedAt']}",
        source=source,
        type_=ce_type("interaction.erasure"),
        time=now,
        subject=key,
    )
    return OutRecord(interactions_topic, key.encode(), orjson.dumps(value), headers)
