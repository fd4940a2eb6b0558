"""Where tasks run: a Multipass VM (by name) or any SSH host (``ssh://user@host:port``)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from devorch_tui.errors import DevorchError
from devorch_tui.services.validation import VM_NAME_RULE, validate_vm_name

_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$")
_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*):[^/?#]*@")
PASSWORD_MASK = "********"


class TargetError(DevorchError):
    """A target cannot be used: bad spelling, unknown VM, VM not running, no address."""


@dataclass(frozen=True)
class Target:
    """One SSH destination. ``name`` is what the user wrote (the VM name or the ssh:// spec)."""

    name: str
    host: str
    port: int
    user: str
    vm: str | None = None

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{self.user}@{host}:{self.port}"


class InstanceLister(Protocol):
    """What resolution needs from the multipass client: ``await list()`` of instances."""

    async def list(self) -> Sequence[Any]: ...


def is_ssh_url(spec: str) -> bool:
    return spec.startswith("ssh://")


def without_password(spec: str) -> str:
    """``ssh://user:secret@host`` -> ``ssh://user:********@host``: what an error message may show."""
    return _URL_PASSWORD.sub(lambda match: f"{match['head']}:{PASSWORD_MASK}@", spec, count=1)


def parse_ssh_url(spec: str, *, default_user: str, default_port: int = 22) -> Target:
    """``ssh://user@host:port`` (user and port optional) -> Target named ``spec``."""
    shown = without_password(spec)
    try:
        parts = urlsplit(spec)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"{shown!r} is not a valid SSH address: {exc}", hint="write it as ssh://user@host:port") from None
    host = parts.hostname
    if parts.password is not None:
        raise TargetError(f"{shown!r} contains a password", hint="remove it: devorch-tui logs in with its SSH key only")
    if parts.scheme != "ssh" or not host or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise TargetError(f"{shown!r} is not a valid SSH address", hint="write it as ssh://user@host:port, e.g. ssh://ubuntu@10.0.0.5:22")
    user = unquote(parts.username) if parts.username else default_user
    if not _USER_NAME.match(user):
        raise TargetError(f"{user!r} is not a valid user name in {spec!r}", hint="use letters, digits, '_', '.' and '-'")
    if not _valid_host(host):
        raise TargetError(f"{host!r} is not a valid host name or IP address in {spec!r}", hint="check the spelling")
    return Target(name=spec, host=host, port=port or default_port, user=user)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST_NAME.match(host)) and len(host) <= 253


Resolver = Callable[[str], Awaitable[str]]


async def resolve_targets(
    specs: Sequence[str],
    multipass_client: InstanceLister | None = None,
    *,
    user: str = "ubuntu",
    port: int = 22,
    resolver: Resolver | None = None,
) -> list[Target]:
    """Turn what the user typed into targets.

    ``ssh://...`` specs are parsed; other specs are VM names, looked up with ``resolver(name) ->
    address`` when given, else in one ``multipass_client.list()``. VM targets use ``user`` and ``port``
    (the ssh_user / ssh_port settings). Every problem is a TargetError saying how to fix it.
    """
    if not specs:
        raise TargetError("no target given", hint="name a VM (see `devorch-tui vm list`) or an ssh://user@host:port")
    if len(set(specs)) != len(specs):
        raise TargetError(f"a target is given twice: {' '.join(map(without_password, specs))}", hint="list each target once")
    targets: list[Target] = []
    instances: dict[str, Any] | None = None
    for spec in specs:
        if is_ssh_url(spec):
            targets.append(parse_ssh_url(spec, default_user=user, default_port=port))
            continue
        try:
            validate_vm_name(spec)
        except DevorchError:
            raise TargetError(
                f"{spec!r} is neither a VM name nor an ssh:// address",
                hint=f"VM names: {VM_NAME_RULE}; other hosts: ssh://user@host:port",
            ) from None
        if resolver is not None:
            address = await resolver(spec)
        else:
            if multipass_client is None:
                raise TargetError(f"cannot look up VM {spec!r}: multipass is not available", hint="use ssh://user@host:port")
            if instances is None:
                instances = {instance.name: instance for instance in await multipass_client.list()}
            address = _address_of(spec, instances)
        targets.append(Target(name=spec, host=address, port=port, user=user, vm=spec))
    return targets


def _address_of(name: str, instances: dict[str, Any]) -> str:
    instance = instances.get(name)
    if instance is None:
        known = ", ".join(sorted(instances)) or "none"
        raise TargetError(f"there is no VM named {name!r} (VMs: {known})", hint="check the name with `devorch-tui vm list`")
    if not getattr(instance, "is_running", False):
        raise TargetError(f"VM {name!r} is {instance.state}, not Running", hint=f"start it with `devorch-tui vm start {name}`")
    address = instance.address
    if not address:
        raise TargetError(
            f"VM {name!r} has no IPv4 address yet",
            hint="wait until it has finished booting (see `devorch-tui vm list`), then try again",
        )
    return address


def key_path_problem(key: Path) -> str | None:
    """Why the private key cannot be used, or None."""
    if not key.exists():
        return f"there is no SSH private key at {key}"
    if not key.is_file():
        return f"{key} is not a file"
    return None
