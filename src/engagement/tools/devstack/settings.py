"""Settings of ``engagement dev`` (environment variables; the flags of `engagement dev` override)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from engagement.settings import CommonSettings

REPO_CONFIG_DEV = Path(__file__).resolve().parents[2] / "config" / "dev"


class DevSettings(CommonSettings):
    """Where the dev configuration lives and how the demo behaves."""

    dev_config_dir: Path = Field(
        Path("config/dev"),
        description="sources.toml, rules.toml, webhooks.toml for `engagement dev`.",
    )
    demo_rate: float = Field(20.0, gt=0, description="Demo events per second.")
    demo_write_key: SecretStr = Field(
        SecretStr("dev_write_key"), description="Write key the demo sends with."
    )
    demo_read_key: SecretStr = Field(
        SecretStr("dev_read_key"), description="Read key the live view uses."
    )
    webhook_receiver_secret: SecretStr | None = Field(
        None,
        description="whsec_ secret of `engagement dev receiver` (default: from webhooks.toml).",
    )
    dev_status_interval: float = Field(
        5.0, gt=0, description="Seconds between headless status lines."
    )

    @property
    def config_dir(self) -> Path:
        """The dev config directory: DEV_CONFIG_DIR, else the repository's config/dev."""
        return self.dev_config_dir if self.dev_config_dir.is_dir() else REPO_CONFIG_DEV
