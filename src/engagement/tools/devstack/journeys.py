"""Demo candidate journeys: pure functions from a seeded random source to Segment events.

Personas follow what recruitment marketing sees: most people only browse, some read content, some
subscribe to job alerts and identify, a few apply (they turn hot), and some cool off again
(they unsubscribe). Event names are the default score template's (docs/design.md §4).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

CHANNELS = ("web", "ad", "social")
JOBS = ("data-engineer", "nurse-icu", "store-manager", "backend-developer", "accountant")
ARTICLES = ("life-at-acme", "how-we-hire", "graduate-programme", "remote-work")
CAMPAIGNS = {
    "ad": ("linkedin", "cpc", "spring-hiring"),
    "social": ("instagram", "social", "team-stories"),
}

# persona -> weight in the mix; the first journey of a run is always an applicant (a hot
# candidate appears within the first minute of the demo).
PERSONAS: dict[str, int] = {
    "browser": 55,
    "reader": 18,
    "subscriber": 12,
    "applicant": 10,
    "cooler": 5,
}


@dataclass
class Journey:
    """One person's planned events; ``next_step`` hands them out in order."""

    candidate: str
    persona: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    position: int = 0

    @property
    def done(self) -> bool:
        return self.position >= len(self.steps)

    def next_step(self) -> dict[str, Any]:
        """Return the next event (without messageId/timestamp; the sender adds them)."""
        step = self.steps[self.position]
        self.position += 1
        return step


def pick_persona(rng: random.Random, index: int) -> str:
    """Return the persona of the ``index``-th journey of a run (0 is always an applicant)."""
    if index == 0:
        return "applicant"
    return rng.choices(list(PERSONAS), weights=list(PERSONAS.values()))[0]


def new_journey(rng: random.Random, *, run: str, index: int) -> Journey:
    """Return the ``index``-th journey of run ``run`` (ids are unique per run)."""
    persona = pick_persona(rng, index)
    anon, user = f"anon-{run}-{index}", f"cand-{run}-{index}"
    channel = rng.choice(CHANNELS)
    if persona == "cooler":
        return Journey(user, persona, _cooler(rng, anon, user, channel))
    steps = _browse(rng, anon, channel, job_views=rng.randint(1, 4))
    if persona == "browser":
        return Journey(f"anon:{anon}", persona, steps)
    steps += _content(rng, anon, rng.choice(CHANNELS), heavy=persona == "applicant")
    if persona == "reader":
        return Journey(f"anon:{anon}", persona, steps)
    steps += _subscribe_and_identify(rng, anon, user)
    if persona == "applicant":
        steps += _apply(rng, user)
    return Journey(user, persona, steps)


def _cooler(rng: random.Random, anon: str, user: str, channel: str) -> list[dict[str, Any]]:
    """66-69 points (score ~74, hot), then -25 (score ~57, back to warm): one hot, one cooled."""
    steps = _browse(rng, anon, channel, job_views=2)
    steps += [
        _track("Article Read", channel, anon=anon, article=rng.choice(ARTICLES)),
        _track("Video Watched", channel, anon=anon, video="day-in-the-life"),
        _track("Content Downloaded", channel, anon=anon, asset="benefits-guide.pdf"),
    ]
    steps += _subscribe_and_identify(rng, anon, user)
    return [
        *steps,
        _track("Webinar Attended", "web", user=user, webinar="meet-the-team"),
        _track("Newsletter Subscribed", "web", user=user),
        _track("Job Alert Unsubscribed", "web", user=user),
        _track("Newsletter Unsubscribed", "web", user=user),
    ]


def _ids(anon: str | None = None, user: str | None = None) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    if anon:
        ids["anonymousId"] = anon
    if user:
        ids["userId"] = user
    return ids


def _track(
    event: str, channel: str, *, anon: str | None = None, user: str | None = None, **props: Any
) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "track", "event": event, **_ids(anon, user)}
    message["properties"] = {"channel": channel, **props}
    if channel in CAMPAIGNS:
        source, medium, name = CAMPAIGNS[channel]
        message["context"] = {"campaign": {"source": source, "medium": medium, "name": name}}
    return message


def _page(name: str, channel: str, anon: str) -> dict[str, Any]:
    path = "/careers/" + name.lower().replace(" ", "-")
    return {
        "type": "page",
        "name": name,
        "anonymousId": anon,
        "properties": {"channel": channel, "path": path, "url": "https://careers.example" + path},
    }


def _browse(rng: random.Random, anon: str, channel: str, *, job_views: int) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    if channel == "ad":
        steps.append(_track("Ad Clicked", "ad", anon=anon, ad_id=f"ad-{rng.randint(1, 9)}"))
    elif channel == "social":
        steps.append(
            _track("Social Post Engaged", "social", anon=anon, post_id=f"post-{rng.randint(1, 30)}")
        )
    steps.append(_page("Careers Home", channel, anon))
    for _ in range(job_views):
        steps.append(_track("Job Viewed", channel, anon=anon, job_id=rng.choice(JOBS)))
    return steps


def _content(rng: random.Random, anon: str, channel: str, *, heavy: bool) -> list[dict[str, Any]]:
    steps = [_track("Article Read", channel, anon=anon, article=rng.choice(ARTICLES))]
    steps.append(_track("Video Watched", channel, anon=anon, video="day-in-the-life"))
    if heavy or rng.random() < 0.4:
        steps.append(_track("Content Downloaded", channel, anon=anon, asset="benefits-guide.pdf"))
    if channel == "social" and rng.random() < 0.5:
        steps.append(_track("Social Post Shared", "social", anon=anon, post_id="team-stories"))
    if heavy:
        steps.append(_track("Webinar Registered", "web", anon=anon, webinar="meet-the-team"))
    return steps


def _subscribe_and_identify(rng: random.Random, anon: str, user: str) -> list[dict[str, Any]]:
    traits = {
        "email": f"{user}@example.com",
        "first_name": rng.choice(["Ada", "Sam", "Noor", "Lee"]),
    }
    return [
        _track("Job Alert Subscribed", "web", anon=anon, keywords=rng.choice(JOBS)),
        {"type": "identify", "anonymousId": anon, "userId": user, "traits": traits},
        _track("Job Viewed", "web", user=user, job_id=rng.choice(JOBS)),
    ]


def _apply(rng: random.Random, user: str) -> list[dict[str, Any]]:
    job = rng.choice(JOBS)
    return [
        _track("Webinar Attended", "web", user=user, webinar="meet-the-team"),
        _track("Application Started", "web", user=user, job_id=job),
        _track("Application Submitted", "web", user=user, job_id=job),
    ]
