"""Settings (pydantic-settings) and where things live (platformdirs).

Precedence, highest first: explicit arguments (CLI flags), ``DEVORCH_*`` environment variables,
``settings.toml`` in the config folder, defaults. App state (run history, logs, known_hosts) lives in
the platformdirs state folder, the dedicated SSH key in the data folder; the *workspace* is the
user's project folder holding ``templates/``, ``.env`` and the rendered ``cloud-init.yaml``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from devorch_tui.errors import DevorchError

APP_NAME = "devorch-tui"
ENV_PREFIX = "DEVORCH_"


def default_config_dir() -> Path:
    override = os.environ.get(f"{ENV_PREFIX}CONFIG_DIR")
    return Path(override).expanduser() if override else Path(platformdirs.user_config_dir(APP_NAME))


class Settings(BaseSettings):
    """Application settings. Every field can be set as ``DEVORCH_<FIELD>`` or in settings.toml."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    # Folders. None means "the platformdirs default".
    config_dir: Path | None = None
    data_dir: Path | None = None
    state_dir: Path | None = None

    workspace: Path = Field(default_factory=Path.cwd, description="Folder with templates/, .env and cloud-init.yaml")

    # Multipass
    multipass_bin: str = Field("multipass", description="The multipass executable (name on PATH or a path)")
    multipass_timeout: float = Field(30.0, gt=0, description="Seconds allowed for quick calls (list, info, version...)")
    multipass_launch_timeout: float = Field(1800.0, gt=0, description="Seconds allowed for launch / start / clone")
    poll_interval: float = Field(2.0, gt=0, description="Seconds between two `multipass list` polls")
    info_interval: float = Field(10.0, gt=0, description="Seconds between two `multipass info` refreshes")

    # SSH
    ssh_user: str = Field("ubuntu", description="User to log in as inside VMs")
    ssh_port: int = Field(22, ge=1, le=65535, description="SSH port of VMs")
    ssh_key: Path | None = Field(None, description="Private key for VMs; default: the dedicated key in the data folder")
    ssh_connect_timeout: float = Field(15.0, gt=0)
    ssh_keepalive_interval: float = Field(15.0, gt=0)
    max_parallel_targets: int = Field(4, ge=1, description="Targets a task file runs on at once")

    # UI
    log_max_lines: int = Field(200_000, ge=1000, description="Lines kept in the Logs pane per view")
    keymap: dict[str, str] = Field(default_factory=dict, description="Binding id -> keys, e.g. {'vms.start': 's'}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = default_config_dir() / "settings.toml"
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))

    @property
    def paths(self) -> AppPaths:
        return AppPaths(
            config_dir=(self.config_dir or default_config_dir()).expanduser(),
            data_dir=(self.data_dir or Path(platformdirs.user_data_dir(APP_NAME))).expanduser(),
            state_dir=(self.state_dir or Path(platformdirs.user_state_dir(APP_NAME))).expanduser(),
        )

    @property
    def ssh_private_key(self) -> Path:
        """The private key used for VMs: the setting, else the dedicated key."""
        return self.ssh_key.expanduser() if self.ssh_key else self.paths.dedicated_key

    @property
    def workspace_paths(self) -> Workspace:
        return Workspace(self.workspace.expanduser().resolve())


@dataclass(frozen=True)
class AppPaths:
    """The platformdirs folders of the app and the files inside them."""

    config_dir: Path
    data_dir: Path
    state_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.toml"

    @property
    def dedicated_key(self) -> Path:
        return self.data_dir / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "devorch-tui.log"

    def as_dict(self) -> dict[str, Path]:
        return {
            "config_dir": self.config_dir,
            "settings_file": self.settings_file,
            "data_dir": self.data_dir,
            "ssh_key": self.dedicated_key,
            "state_dir": self.state_dir,
            "known_hosts": self.known_hosts,
            "runs_dir": self.runs_dir,
            "log_file": self.log_file,
        }


@dataclass(frozen=True)
class Workspace:
    """A user's workspace folder and the files devorch-tui reads and writes there."""

    root: Path

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def template_file(self) -> Path:
        return self.templates_dir / "cloud-init.j2"

    @property
    def env_example(self) -> Path:
        return self.templates_dir / ".env.example"

    @property
    def env_file(self) -> Path:
        return self.root / ".env"

    @property
    def rendered(self) -> Path:
        return self.root / "cloud-init.yaml"

    def as_dict(self) -> dict[str, Path]:
        return {
            "workspace": self.root,
            "template": self.template_file,
            "env_example": self.env_example,
            "env_file": self.env_file,
            "rendered": self.rendered,
        }


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning a broken settings.toml or a bad DEVORCH_* value into a clear error."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**clean)
    except tomllib.TOMLDecodeError as exc:
        path = default_config_dir() / "settings.toml"
        raise DevorchError(
            f"settings file {path} is not valid TOML: {exc}",
            hint=f"fix the line named above, or move {path} away to use the defaults",
        ) from None
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise DevorchError(
            f"invalid setting: {problems}",
            hint=f"check DEVORCH_* environment variables and {default_config_dir() / 'settings.toml'}",
        ) from None
