"""The fault schedule: real signals to real processes while the load runs.

Each fault starts at its share of the load's duration (or once the one before is done, when that
took longer) and restarts what it killed, waiting until it is ready again, as a process manager
would.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.chaos.stack import Service, Stack


@dataclass(frozen=True)
class Fault:
    at: float  # share of the load's duration
    name: str
    act: Callable[[Stack], None]


@dataclass
class FaultLog:
    done: list[tuple[float, str, float]] = field(default_factory=list)  # (start, name, seconds)
    errors: list[str] = field(default_factory=list)


def kill_and_restart(service: str) -> Callable[[Stack], None]:
    def act(stack: Stack) -> None:
        target = _service(stack, service)
        target.signal(signal.SIGKILL)
        target.start()

    return act


def _service(stack: Stack, name: str) -> Service:
    if name.startswith("scorer-"):
        return stack.scorer(name.removeprefix("scorer-"))
    return {"ingest": stack.ingest, "notifier": stack.notifier}[name]


def freeze_redis(seconds: float) -> Callable[[Stack], None]:
    def act(stack: Stack) -> None:
        stack.redis.freeze()
        try:
            time.sleep(seconds)
        finally:
            stack.redis.thaw()

    return act


def restart_redis(stack: Stack) -> None:
    stack.redis.restart()


def restart_broker(stack: Stack) -> None:
    """SIGKILL the broker and start it again on its data (its log recovered, as after a crash)."""
    assert stack.broker is not None, "the suite did not start the broker"
    stack.broker.kill()
    stack.broker.start()


def join_scorer(stack: Stack) -> None:
    stack.scorer("c").start()


def leave_scorer(stack: Stack) -> None:
    stack.scorer("c").stop()


def schedule(freeze_seconds: float, *, broker: bool = False) -> list[Fault]:
    """Every kind of fault, spread over the load; ``broker``: a broker restart too (Apache Kafka
    started by the suite: Tansu keeps nothing across a restart)."""
    return [
        Fault(0.08, "SIGKILL scorer-a, restart", kill_and_restart("scorer-a")),
        Fault(0.20, f"SIGSTOP Redis {freeze_seconds:g}s, SIGCONT", freeze_redis(freeze_seconds)),
        Fault(0.30, "scorer-c joins", join_scorer),
        Fault(0.42, "SIGKILL ingest, restart", kill_and_restart("ingest")),
        Fault(0.52, "Redis SHUTDOWN, start again (AOF)", restart_redis),
        *([Fault(0.56, "SIGKILL the broker, restart (its data kept)", restart_broker)] * broker),
        Fault(0.62, "scorer-c leaves (SIGTERM)", leave_scorer),
        Fault(0.72, "SIGKILL notifier, restart", kill_and_restart("notifier")),
        Fault(0.82, "SIGKILL scorer-b, restart", kill_and_restart("scorer-b")),
    ]


def run_faults(
    stack: Stack, faults: list[Fault], *, start: float, seconds: float, log: FaultLog
) -> None:
    """Run ``faults``, each at ``start + share * seconds`` at the earliest.

    Call it on the main thread: the processes it starts die with the thread that started them
    (``PR_SET_PDEATHSIG``)."""
    for fault in faults:
        time.sleep(max(0.0, start + fault.at * seconds - time.time()))
        began = time.time()
        try:
            fault.act(stack)
        except Exception as exc:  # the test reports it; the other faults still run
            log.errors.append(f"{fault.name}: {exc}")
        log.done.append((began - start, fault.name, time.time() - began))
