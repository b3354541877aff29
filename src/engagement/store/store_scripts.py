"""Sources and arguments of the Lua scripts in ``engagement/store/lua`` and decoding of their replies.

Every candidate script starts with ``common.lua``. The store bakes its config (half-life seconds,
score scale, rules version, contributions kept, enter/exit per tier) into the script text
(``config_block``: one script per rules version, nothing parsed per call), so the script's own
arguments start at ARGV[1]. Without that block a script reads the config from ARGV[1]
(``config_args``) and its arguments from ARGV[2].
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from engagement.model.identity import ANONYMOUS
from engagement.model.jobs import JOBS_KEPT
from engagement.model.records import Interaction
from engagement.model.rules import Rules
from engagement.model.score_views import PILLAR_FIELDS, unescape
from engagement.model.scoring import ScoredEvent
from engagement.store.pipelining import Command, run_pipelined

__all__ = ["Command", "run_pipelined"]  # the store's pipelining, where its users import it

PLAIN_SCRIPTS = (
    "rank",
    "rank_jobs",
    "rank_after",
    "fence_reach",
    "fence_drop",
    "fence_copy",
    "carry_sequence",
    "forget_idle",
)


RANK_SCRIPTS = ("rank", "rank_jobs")  # rank_lib.lua, then the script
JOB_SCRIPTS = ("apply_job", "merge_add")  # the scripts that touch (candidate, job) profiles


def lua_source(name: str, config: str = "", jobs: str = "") -> str:
    """The text of a candidate script: ``common.lua``, then ``config`` (a config_block), then it;
    a plain script's text (a RANK_SCRIPTS one after ``rank_lib.lua``).

    A script of JOB_SCRIPTS has ``jobs`` (a job_config_block; default: the candidate's tiers,
    JOBS_KEPT) and ``job_profile.lua`` before it; ``apply_job`` is ``apply.lua`` wrapped as the
    function ``apply_candidate``, then ``apply_job.lua`` (so ``apply`` itself, the script of
    every event without a job, is unchanged)."""
    body = _lua(name)
    if name in RANK_SCRIPTS:
        return f"{_lua('rank_lib')}\n{body}"
    if name in PLAIN_SCRIPTS:
        return body
    parts = [_lua("common"), config]
    if name in JOB_SCRIPTS:
        parts += [jobs or _DEFAULT_JOB_BLOCK, _lua("job_profile")]
    if name == "apply_job":
        parts.append(f"local function apply_candidate()\n{_lua('apply')}\nend")
    return "\n".join(part for part in (*parts, body) if part)


def _lua(name: str) -> str:
    folder = resources.files("engagement.store").joinpath("lua")
    return folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")


def job_config_block(rules: Rules, jobs_kept: int = JOBS_KEPT) -> str:
    """Lua defining ``JOB`` for job_profile.lua: profiles kept per candidate and the job tiers
    (flat enter/exit, like the config block's)."""
    tiers = ", ".join(f"{tier.enter}, {tier.exit}" for tier in rules.tiers_of_jobs)
    return f"local JOB = {{keep = {int(jobs_kept)}, tiers = {{{tiers}}}}}"


# without a block: the candidate's tiers, read from the config when the script runs
_DEFAULT_JOB_BLOCK = f"local JOB = {{keep = {JOBS_KEPT}, tiers = read_config().tiers}}"


def config_block(rules: Rules, contributions_kept: int) -> str:
    """Lua redefining ``read_config`` to return the config as constants (exact float literals)."""
    tiers = ", ".join(f"{tier.enter}, {tier.exit}" for tier in rules.tiers)  # flat, see common.lua
    version = "".join(f"\\{b}" for b in rules.version.encode())  # decimal escapes: any bytes
    return (
        f"local CONFIG = {{h = {rules.half_life_seconds!r}, scale = {rules.score_scale!r},"
        f' version = "{version}", keep = {int(contributions_kept)}, tiers = {{{tiers}}}}}\n'
        "local function read_config() return CONFIG, 1 end"
    )


def config_args(rules: Rules, contributions_kept: int) -> list[bytes]:
    """ARGV[1] of every candidate script (``read_config`` in common.lua), encoded once."""
    parts = [
        repr(rules.half_life_seconds),
        repr(rules.score_scale),
        rules.version,
        str(contributions_kept),
        *[str(v) for tier in rules.tiers for v in (tier.enter, tier.exit)],
    ]
    return ["\x1f".join(parts).encode()]


def event_args(event: ScoredEvent, window: str) -> tuple[str, ...]:
    """ARGV of apply.lua (``window``: the dedupe window in seconds, as text)."""
    t = repr(event.t)
    return (
        event.message_id,
        t,
        t if event.received_at == event.t else repr(event.received_at),
        repr(event.points),
        PILLAR_FIELDS[event.pillar],
        event.channel,
        event.event,
        str(event.daily_cap or 0),
        window,
    )


def merge_source(interaction: Interaction) -> str | None:
    """The candidate an identify/alias folds into ``userId`` (alias previousId: see docs)."""
    if interaction.type == "identify":
        return f"{ANONYMOUS}{interaction.anonymousId}" if interaction.anonymousId else None
    previous = interaction.previousId
    if not previous:
        return None
    return f"{ANONYMOUS}{previous}" if previous == interaction.anonymousId else previous


def frozen_args(source: str, result: list[Any]) -> list[str]:
    """ARGV of merge_add.lua from merge_take.lua's reply on ``source``."""
    snap = text(result[1]).split("\x1f")
    channels = [unescape(x) if k % 2 == 0 else x for k, x in enumerate(snap[11:])]
    caps = [text(x) for x in result[2]]
    contributions = [text(x) for x in result[3]]
    merged = sorted(text(x) for x in result[4])
    jobs = [text(x) for x in result[5]] if len(result) > 5 else []
    return [
        source,
        str(len(merged)),
        *merged,
        *snap[0:5],
        snap[8],
        str(len(channels) // 2),
        *channels,
        str(len(caps) // 2),
        *caps,
        str(len(jobs) // 2),
        *jobs,
        *contributions,
    ]


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
