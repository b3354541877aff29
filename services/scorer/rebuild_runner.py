"""Every scorer process runs the tenants' rebuilds requested through ``POST /v1/rules/rebuild``
(``engagement.store.rebuild_requests``), one process per tenant at a time:

- it polls the queue of tenants with a request not finished (``POLL_SECONDS``); for each, it
  takes the tenant's lock (``SET NX PX``) or leaves the tenant to the process holding it;
- holding it, it renews it every third of its life and stops the rebuild (without activating)
  as soon as a renewal finds it lost, so two processes never run one tenant's rebuild past a
  renewal period, and never into the same keys (each attempt has a generation of its own:
  ``Rebuild.fresh_generation``, past the one the request recorded for an earlier attempt);
- it runs ``services.scorer.tenant_rebuild.Rebuild`` (the invariants are that module's) for the
  version the request names, once this process's registry holds it, and records the outcome:
  ``activated`` once the activation is on the rules topic, else ``aborted`` with the error.

A process that dies while running one leaves it ``running`` with a lock that lapses: the next
process to poll takes it over, as a new attempt: it first sets the earlier attempt's handover key
to ``aborted`` (unless that attempt activated: then the request is ``activated``) and drops its
keys, so an attempt that was only paused can never activate them; live scorers waiting at its
markers go on with the old generation.
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
        ``aborted``) and the carry's report when it activated; an outage propagates (the request
        stays ``running``, taken over later)."""
        request = await self.requests.latest(tenant)
        if request is None or request.state not in IN_PROGRESS:
            await self.requests.unqueue(tenant)
            return None
        if request.generation is not None and await self._earlier_activated(
            tenant, request.generation
        ):
            await self._finish(tenant, "activated")
            return None
        after = request.generation or 0
        generation = await self.rebuild.fresh_generation(tenant, after=after)
        await self.requests.update(
            tenant, state="running", generation=generation, started_at=_now()
        )
        try:
            await self._holds(tenant, request.version)
            report = await self.rebuild.run(tenant, version=request.version, generation=generation)
        except Exception as exc:
            if is_outage(exc):
                raise
            log.warning("rebuild of tenant %s aborted: %s", tenant, exc)
            await self._finish(tenant, "aborted", error=str(exc))
            return None
        log.info("rebuilt tenant %s into generation %d: %s", tenant, generation, report)
        await self._finish(tenant, "activated")
        return report

    async def _earlier_activated(self, tenant: str, generation: int) -> bool:
        """Fence an earlier attempt off (its handover key ``aborted``, its keys dropped) unless
        it activated already (True): one that still runs can then never activate them."""
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
