"""Settings of the lag exporter: where to serve, and which consumer groups to watch."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from engagement.settings import CommonSettings


@dataclass(frozen=True)
class WatchedGroup:
    """A consumer group and the topic it consumes."""

    group: str
    topic: str


class LagExporterSettings(CommonSettings):
    """The exporter reads SCORER_GROUP_ID and NOTIFIER_GROUP_ID as the workers do, so one
    environment gives both the same group names."""

    lag_exporter_host: str = Field("0.0.0.0", description="Bind address of the lag exporter.")
    lag_exporter_port: int = Field(
        9308, ge=1, le=65535, description="Port of the lag exporter's /metrics, /livez, /readyz."
    )
    lag_exporter_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest wait for the broker's offsets during one scrape (s)."
    )
    scorer_group_id: str = Field("", description="The scorer's consumer group (as the scorer).")
    notifier_group_id: str = Field(
        "", description="The notifier's consumer group (as the notifier)."
    )

    def watched(self) -> tuple[WatchedGroup, ...]:
        """The scorer's group on the interactions topic, the notifier's on the changes topic."""
        default = f"{self.kafka_topic_prefix}engagement-"
        return (
            WatchedGroup(self.scorer_group_id or default + "scorer", self.topics.interactions),
            WatchedGroup(
                self.notifier_group_id or default + "notifier", self.topics.scores_changed
            ),
        )
