"""Every scorer process runs the tenants' rebuilds requested through ``POST /v1/rules/rebuild``
(``engagement.store.rebuild_requests``), one process per tenant at a time:

- it polls the queue of tenants with a request not finished (``POLL_SECONDS``); for each, it
  takes the tenant's lock (``SET NX PX``) or leaves the tenant to the process holding it;
- holding it, it renews it every third of its life and stops the rebuild (without activating)
  as soon as a renewal finds it lost, so two processes never run one tenant's rebuild past a
  renewal period, and never into the same keys (each attempt has a generation of its own:
  ``Rebuild.fresh_generation``, past the one the request recorded for an earlier attempt);
- it runs ``services.scorer.tenant_rebuild.Rebuild`` (the invariants are that module's) for the
  version the request names, once this process's registry holds it, and records the outcome.

The recorded outcome never contradicts the attempt's handover key (invariant 6 there):

- ``activated`` once the key is ``activated`` and the activation on the rules topic;
- ``aborted`` (with the error) once the key is ``aborted``: an attempt that fails before its key
  is ``activated`` sets it so itself, so live scorers waiting at its markers go on at once;
- ``running`` otherwise: an outage, or a failure after the key is ``activated`` (the publish
  failed), is retried by the next poll.

The next poll of a request still ``running`` (this process's after a failure, or another's once
the lock of a process that died lapsed) looks at the handover key of the generation the request
recorded: ``activated``, it publishes that activation again (the same record: its time is the
request's ``activated_at``) and records the request ``activated``; otherwise it sets the key to
``aborted`` and drops the attempt's keys, so an attempt that was only paused can never activate
them, and runs a new attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from engagement.faust.outages import is_outage
from engagement.faust.poison import describe
from engagement.model.templates import Templates
from engagement.store.rebuild_requests import IN_PROGRESS, LOCK_MS, RebuildRequests, State
from engagement.store.sequence_carry import CarryReport
from engagement.store.templated_store import handover_key
from services.scorer.tenant_rebuild import Rebuild, drop_generation

log = logging.getLogger("engagement.rebuild")
POLL_SECONDS = 1.0
VERSION_WAIT_SECONDS = 30.0  # the request's version reaches this process's registry within this


@dataclass
class RebuildRunner:
    """Runs the queued rebuild requests this process takes the lock of."""

    requests: RebuildRequests
    rebuild: Rebuild
    templates: Templates  # this process's registry, followed from the rules topic
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    version_wait: float = VERSION_WAIT_SECONDS

    async def serve(self) -> None:
        """Forever: poll, run what this process takes; an outage waits for the next poll."""
        failing = False
        while True:
            try:
                await self.poll()
                failing = False
            except Exception as exc:
                if not failing:  # once per outage, not every second of it
                    log.warning(
                        "rebuild requests not served (%s); each poll retries",
                        describe(exc),
                        exc_info=not is_outage(exc),
                        extra={"event": "scorer.rebuild_poll_failed"},
                    )
                failing = True
            await asyncio.sleep(POLL_SECONDS)

    async def poll(self) -> None:
        """Run the request of each queued tenant whose lock this process takes."""
        for tenant in await self.requests.queued():
            await self.take(tenant)

    async def take(self, tenant: str) -> bool:
        """Run the tenant's request if this process takes its lock (False when another holds
        it), and release the lock."""
        if not await self.requests.lock(tenant, self.token):
            return False
        try:
            await self.while_locked(tenant)
        finally:
            await self.requests.unlock(tenant, self.token)
        return True

    async def while_locked(self, tenant: str) -> CarryReport | None:
        """Run the tenant's request, renewing the lock; stop it when the lock is lost."""
        task = asyncio.ensure_future(self.run(tenant))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=LOCK_MS / 3000)
                if not task.done() and not await self.requests.renew(tenant, self.token):
                    log.warning("rebuild of tenant %s stopped: its lock was lost", tenant)
                    task.cancel()
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return None if task.cancelled() else task.result()

    async def run(self, tenant: str) -> CarryReport | None:
        """One attempt at the tenant's request; its outcome recorded (``activated``,
        ``aborted``) and the carry's report when it activated. An outage, or any failure once
        the attempt's handover key is ``activated``, propagates: the request stays ``running``
        and the next poll (here or a takeover) publishes the activation."""
        request = await self.requests.latest(tenant)
        if request is None or request.state not in IN_PROGRESS:
            await self.requests.unqueue(tenant)
            return None
        if request.generation is not None and await self._activated(tenant, request.generation):
            await self._holds(tenant, request.version)
            at = request.activated_at or _now()  # recorded by its attempt (older ones: none)
            await self.rebuild.publish(
                tenant, version=request.version, generation=request.generation, at=at
            )
            await self._finish(tenant, "activated")
            return None
        generation = await self.rebuild.fresh_generation(tenant, after=request.generation or 0)
        await self.requests.update(
            tenant, state="running", generation=generation, started_at=_now()
        )
        try:
            report = await self._attempt(tenant, request.version, generation)
        except Exception as exc:
            if is_outage(exc) or await self._activated(tenant, generation):
                raise
            log.warning("rebuild of tenant %s aborted: %s", tenant, exc)
            await self._finish(tenant, "aborted", error=str(exc))
            return None
        log.info("rebuilt tenant %s into generation %d: %s", tenant, generation, report)
        await self._finish(tenant, "activated")
        return report

    async def _attempt(self, tenant: str, version: str, generation: int) -> CarryReport:
        """Rescore into ``generation``, record the activation's time, activate."""
        await self._holds(tenant, version)
        report = await self.rebuild.rescore(tenant, version=version, generation=generation)
        at = _now()
        if not await self.requests.renew(tenant, self.token):
            raise RuntimeError("the rebuild's lock was lost before its activation")
        await self.requests.update(tenant, activated_at=at)
        await self.rebuild.activate(tenant, version=version, generation=generation, at=at)
        return report

    async def _activated(self, tenant: str, generation: int) -> bool:
        """Whether the attempt into ``generation`` activated (True); else fence it off: its
        handover key ``aborted`` (live scorers at its markers go on at once, and one that still
        runs can never activate) and its keys dropped."""
        redis, keys = self.rebuild.redis, self.rebuild.base.keys
        key = handover_key(keys, tenant, generation)
        if not await redis.set(key, "aborted", nx=True) and await redis.get(key) in (
            b"activated",
            "activated",
        ):
            return True
        if generation > self.templates.generation(tenant):
            await drop_generation(redis, keys.prefix, tenant, generation)
        return False

    async def _finish(self, tenant: str, state: State, error: str = "") -> None:
        """Record the outcome, if this process still holds the lock (else the attempt was
        taken over, and the one that took it records)."""
        if await self.requests.renew(tenant, self.token):
            await self.requests.finish(tenant, state, _now(), error=error)

    async def _holds(self, tenant: str, version: str) -> None:
        """Wait until this process's registry holds the request's version (a bounded time)."""
        deadline = asyncio.get_running_loop().time() + self.version_wait
        while not any(v.version == version for v in self.templates.versions(tenant)):
            if asyncio.get_running_loop().time() > deadline:
                raise ValueError(f"version {version!r} is not on the rules topic")
            await asyncio.sleep(0.1)


def _now() -> str:
    return datetime.now(UTC).isoformat()
