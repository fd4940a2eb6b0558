"""Contract tests: every reference JSON file of multipass (1.16.3 verbatim and 1.17-dev) parses into the
models with the right values. The files are byte-exact copies of shared/reference/multipass-json."""

from __future__ import annotations

from pathlib import Path

import pytest

from devorch_tui.services.multipass_models import (
    Instance,
    InstanceInfo,
    JsonFormatError,
    VersionInfo,
    parse_find,
    parse_info,
    parse_list,
    parse_snapshot_list,
    version_tuple,
)

REFERENCE = Path(__file__).resolve().parents[1] / "fakes" / "multipass_reference"
DEV = REFERENCE / "dev-1.17"

# (1.16 file, 1.17-dev file or None)
PAIRS = {
    "list_empty": ("list_empty.json", "empty_list_reply.json"),
    "list_single": ("list_single.json", "single_instance_list_reply.json"),
    "list_multiple": ("list_multiple.json", "multiple_instances_list_reply.json"),
    "snap_list_single": ("list_snapshots_single.json", "single_snapshot_list_reply.json"),
    "snap_list_multiple": ("list_snapshots_multiple.json", "multiple_snapshots_list_reply.json"),
    "info_empty": ("info_empty.json", "empty_info_reply.json"),
    "info_single": ("info_single_instance.json", "single_instance_info_reply.json"),
    "info_multiple": ("info_multiple_instances.json", "multiple_instances_info_reply.json"),
    "info_snapshot": ("info_snapshot_single.json", "single_snapshot_info_reply.json"),
    "info_snapshots": ("info_snapshots_multiple.json", "multiple_snapshots_info_reply.json"),
    "info_mixed": ("info_mixed_instance_and_snapshot.json", "mixed_instance_and_snapshot_info_reply.json"),
    "info_mixed_multi": (
        "info_mixed_multiple_instances_and_snapshots.json",
        "multiple_mixed_instances_and_snapshots_info_reply.json",
    ),
    "version_client": ("version_client_only.json", "version_client_reply.json"),
    "version_daemon": ("version_client_and_daemon.json", "version_daemon_no_update_reply.json"),
    "version_update": ("version_with_update.json", "version_daemon_update_reply.json"),
    "find_one": ("find_one.json", None),
    "find_multiple": ("find_multiple.json", None),
}


def read(name: str, dev: bool = False) -> str:
    return ((DEV if dev else REFERENCE) / name).read_text(encoding="utf-8")


def both(key: str) -> list[str]:
    stable, dev = PAIRS[key]
    return [read(stable)] + ([read(dev, dev=True)] if dev else [])


def test_every_reference_file_is_covered() -> None:
    stable = {path.name for path in REFERENCE.glob("*.json")}
    dev = {path.name for path in DEV.glob("*.json")}
    assert stable == {pair[0] for pair in PAIRS.values()}
    assert dev == {pair[1] for pair in PAIRS.values() if pair[1]}
    assert len(stable) == 17 and len(dev) == 15


def test_reference_copies_match_shared_reference_when_present() -> None:
    shared = Path("/work/shared/reference/multipass-json")
    if not shared.is_dir():
        pytest.skip("shared reference folder is not on this machine")
    for path in list(REFERENCE.glob("*.json")) + list(DEV.glob("*.json")):
        assert path.read_bytes() == (shared / path.relative_to(REFERENCE)).read_bytes(), path


# --------------------------------------------------------------------------- list


@pytest.mark.parametrize("text", both("list_empty"))
def test_list_empty(text: str) -> None:
    assert parse_list(text) == []


@pytest.mark.parametrize("dev", [False, True])
def test_list_single(dev: bool) -> None:
    (foo,) = parse_list(both("list_single")[dev])
    assert foo.name == "foo"
    assert foo.state == "Running"
    assert foo.ipv4 == ["10.168.32.2", "200.3.123.30"]
    assert foo.release == "Ubuntu 16.04 LTS"
    assert foo.address == "10.168.32.2"
    assert foo.is_running
    assert (foo.zone is not None) is dev
    if dev:
        assert foo.zone.name == "zone1" and foo.zone.available


@pytest.mark.parametrize("dev", [False, True])
def test_list_multiple(dev: bool) -> None:
    running, stopped = parse_list(both("list_multiple")[dev])
    assert (running.name, running.state, running.ipv4, running.release) == (
        "bogus-instance",
        "Running",
        ["10.21.124.56"],
        "Ubuntu 16.04 LTS",
    )
    assert (stopped.name, stopped.state, stopped.ipv4, stopped.release) == ("bombastic", "Stopped", [], "Ubuntu 18.04 LTS")
    assert stopped.address is None and not stopped.is_running and stopped.is_stopped
    if dev:
        assert stopped.zone is not None and stopped.zone.available is False


def test_list_is_sorted_by_name_and_ignores_unknown_keys() -> None:
    text = (
        '{"list": [{"name": "zeta", "state": "Stopped", "ipv4": [], "release": "Ubuntu 24.04 LTS", "new_key": 1},'
        '{"name": "Alpha", "state": "Running", "ipv4": ["N/A"], "release": "Not Available", "zone": {"name": "z"}},'
        '{"name": "beta", "state": "Delayed Shutdown", "ipv4": ["10.0.0.9", "172.17.0.1"], "release": ""}]}'
    )
    alpha, beta, zeta = parse_list(text)
    assert [alpha.name, beta.name, zeta.name] == ["Alpha", "beta", "zeta"]
    assert alpha.ipv4 == ["N/A"] and alpha.address is None and alpha.is_running
    assert beta.address == "10.0.0.9" and beta.is_running
    assert zeta.address is None


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"other": 1}', '{"list": {}}'])
def test_list_rejects_what_is_not_the_list_shape(text: str) -> None:
    with pytest.raises(JsonFormatError):
        parse_list(text)


# --------------------------------------------------------------------------- snapshots list


@pytest.mark.parametrize("text", both("snap_list_single"))
def test_snapshot_list_single(text: str) -> None:
    (snap,) = parse_snapshot_list(text)
    assert (snap.instance, snap.name, snap.parent, snap.comment) == ("foo", "snapshot1", "", "This is a sample comment")
    assert snap.full_name == "foo.snapshot1"


@pytest.mark.parametrize("text", both("snap_list_multiple"))
def test_snapshot_list_multiple_sorted_with_raw_comments(text: str) -> None:
    snaps = parse_snapshot_list(text)
    assert [(s.instance, s.name, s.parent) for s in snaps] == [
        ("hale-roller", "pristine", ""),
        ("hale-roller", "rocking", "pristine"),
        ("hale-roller", "rolling", "pristine"),
        ("prosperous-spadefish", "snapshot10", "snapshot2"),
        ("prosperous-spadefish", "snapshot2", ""),
    ]
    assert snaps[4].comment == "Before restoring snap1\nContains a newline that\r\nshould be truncated"
    assert snaps[1].comment == "A very long comment that should be truncated by the table formatter"


def test_snapshot_list_empty() -> None:
    assert parse_snapshot_list('{"errors": [], "info": {}}') == []


# --------------------------------------------------------------------------- info


@pytest.mark.parametrize("text", both("info_empty"))
def test_info_empty(text: str) -> None:
    assert parse_info(text) == {}


@pytest.mark.parametrize("dev", [False, True])
def test_info_single_running_instance(dev: bool) -> None:
    info = parse_info(both("info_single")[dev])
    foo = info["foo"]
    assert foo.has_details and foo.is_running
    assert foo.state == "Running"
    assert foo.image_hash == "1797c5c82016c1e65f4008fcf89deae3a044ef76087a9ec5b907c6d64a3609ac"
    assert foo.image_release == "16.04 LTS"
    assert foo.release == "Ubuntu 16.04.3 LTS"
    assert foo.cpu_count == 1
    assert foo.load == [0.45, 0.51, 0.15]
    assert (foo.memory_used, foo.memory_total) == (60817408, 1503238554)
    assert (foo.disk_used, foo.disk_total) == (1288490188, 5153960756)
    assert foo.ipv4 == ["10.168.32.2", "200.3.123.29"] and foo.address == "10.168.32.2"
    assert foo.snapshot_count == 0
    assert sorted(foo.mounts) == ["foo", "test_dir"]
    assert foo.mounts["test_dir"].source_path == "/home/user/test_dir"
    assert foo.mounts["foo"].uid_mappings == ["1000:1000"] and foo.mounts["foo"].gid_mappings == ["1000:1000"]
    assert foo.snapshots == {}


@pytest.mark.parametrize("dev", [False, True])
def test_info_multiple_running_and_stopped(dev: bool) -> None:
    info = parse_info(both("info_multiple")[dev])
    assert list(info) == ["bogus-instance", "bombastic"]
    bogus, bombastic = info["bogus-instance"], info["bombastic"]
    assert (bogus.cpu_count, bogus.snapshot_count, bogus.load) == (4, 1, [0.03, 0.1, 0.15])
    assert (bogus.memory_used, bogus.memory_total, bogus.disk_used, bogus.disk_total) == (
        38797312,
        1610612736,
        1932735284,
        6764573492,
    )
    assert bogus.mounts["source"].uid_mappings == ["1000:501"]
    # A stopped instance has "" / {} / [] runtime fields: they become None / empty.
    assert bombastic.state == "Stopped" and bombastic.has_details
    assert bombastic.release == "" and bombastic.cpu_count is None and bombastic.load == []
    assert bombastic.memory_used is None and bombastic.memory_total is None
    assert bombastic.disk_used is None and bombastic.disk_total is None
    assert bombastic.ipv4 == [] and bombastic.address is None
    assert bombastic.snapshot_count == 3 and bombastic.mounts == {}
    assert bombastic.image_release == "18.04 LTS"
    if dev:
        assert bombastic.zone is not None and bombastic.zone.name == "zone2" and not bombastic.zone.available


@pytest.mark.parametrize("dev", [False, True])
def test_info_single_snapshot(dev: bool) -> None:
    info = parse_info(both("info_snapshot")[dev])
    entry = info["bogus-instance"]
    assert not entry.has_details and entry.state == ""
    snap = entry.snapshots["snapshot2"]
    assert (snap.instance, snap.name, snap.parent, snap.children) == (
        "bogus-instance",
        "snapshot2",
        "snapshot1",
        ["snapshot3", "snapshot4"],
    )
    assert snap.comment == "This is a comment with some\nnew\r\nlines."
    assert (snap.cpu_count, snap.disk_space, snap.memory_size, snap.size) == (2, "4.9GiB", "0.9GiB", "128MiB")
    assert snap.created == "1972-01-01T10:00:20.021Z"
    assert snap.mounts == {"Home": "/home/user", "source": "/home/user/source"}


@pytest.mark.parametrize("text", both("info_snapshots"))
def test_info_snapshots_of_several_instances(text: str) -> None:
    info = parse_info(text)
    assert list(info) == ["bogus-instance", "messier-87"]
    hole = info["messier-87"].snapshots["black-hole"]
    assert (hole.comment, hole.cpu_count, hole.disk_space, hole.memory_size, hole.parent) == (
        "Captured by EHT",
        1,
        "1024GiB",
        "128GiB",
        "",
    )
    assert hole.children == [] and hole.mounts == {} and hole.created == "2019-04-10T11:59:59Z"
    assert info["bogus-instance"].snapshots["snapshot2"].size == ""


@pytest.mark.parametrize("text", both("info_mixed"))
def test_info_mixed_instance_and_snapshot(text: str) -> None:
    info = parse_info(text)
    assert not info["bogus-instance"].has_details
    assert list(info["bogus-instance"].snapshots) == ["snapshot2"]
    assert info["bombastic"].has_details and info["bombastic"].snapshot_count == 3 and info["bombastic"].snapshots == {}


@pytest.mark.parametrize("text", both("info_mixed_multi"))
def test_info_instance_details_merged_with_snapshots(text: str) -> None:
    info = parse_info(text)
    bogus = info["bogus-instance"]
    assert bogus.has_details and bogus.state == "Running" and bogus.snapshot_count == 2
    assert list(bogus.snapshots) == ["snapshot1", "snapshot2"]
    assert bogus.snapshots["snapshot1"].parent == "" and bogus.snapshots["snapshot2"].parent == "snapshot1"
    assert not info["messier-87"].has_details and list(info["messier-87"].snapshots) == ["black-hole"]


@pytest.mark.parametrize("key", ["info_single", "info_multiple", "info_snapshot", "info_snapshots", "info_mixed", "info_mixed_multi"])
def test_info_1_16_and_1_17_parse_to_the_same_values(key: str) -> None:
    stable, dev = (parse_info(text) for text in both(key))

    def without_zone(info: dict[str, InstanceInfo]) -> dict:
        return {name: entry.model_dump(exclude={"zone"}) for name, entry in info.items()}

    assert without_zone(stable) == without_zone(dev)


@pytest.mark.parametrize("key", ["list_single", "list_multiple"])
def test_list_1_16_and_1_17_parse_to_the_same_values(key: str) -> None:
    stable, dev = (parse_list(text) for text in both(key))
    assert [i.model_dump(exclude={"zone"}) for i in stable] == [i.model_dump(exclude={"zone"}) for i in dev]


def test_info_without_snapshot_count_on_lxd() -> None:
    text = '{"errors": [], "info": {"vm": {"state": "Running", "cpu_count": "2", "memory": {"used": 5, "total": 9}}}}'
    vm = parse_info(text)["vm"]
    assert vm.snapshot_count is None and vm.cpu_count == 2 and vm.memory_total == 9


# --------------------------------------------------------------------------- version


@pytest.mark.parametrize("text", both("version_client"))
def test_version_client_only_means_daemon_unreachable(text: str) -> None:
    version = VersionInfo.from_json(text)
    assert version.client == "Client version"
    assert version.daemon is None and not version.daemon_reachable and version.update is None


@pytest.mark.parametrize("text", both("version_daemon"))
def test_version_client_and_daemon(text: str) -> None:
    version = VersionInfo.from_json(text)
    assert (version.client, version.daemon, version.update) == ("Client version", "Daemon version", None)
    assert version.daemon_reachable


@pytest.mark.parametrize("text", both("version_update"))
def test_version_with_update(text: str) -> None:
    version = VersionInfo.from_json(text)
    assert version.update is not None
    assert version.update.title == "update title information"
    assert version.update.description == "update description information"
    assert version.update.url == "http://multipass.web"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.16.3", (1, 16, 3)),
        ("1.16.3+mac", (1, 16, 3)),
        ("1.15.0+win", (1, 15, 0)),
        ("1.17.0-dev.123+g9b0af2ec", (1, 17, 0)),
        ("1.14", (1, 14, 0)),
        ("Client version", None),
        ("", None),
        (None, None),
    ],
)
def test_version_tuple(text: str | None, expected: tuple[int, int, int] | None) -> None:
    assert version_tuple(text) == expected


# --------------------------------------------------------------------------- find


def test_find_one() -> None:
    (image,) = parse_find(read("find_one.json"))
    assert (image.name, image.aliases, image.os, image.release, image.remote, image.version) == (
        "ubuntu",
        [],
        "Ubuntu",
        "18.04 LTS",
        "",
        "20190516",
    )
    assert image.label == "Ubuntu 18.04 LTS"


def test_find_multiple_images_and_blueprints() -> None:
    images = parse_find(read("find_multiple.json"))
    assert [(i.name, i.aliases, i.remote, i.release) for i in images] == [
        ("daily:19.10", ["eoan", "devel"], "daily", "19.10"),
        ("lts", [], "", "18.04 LTS"),
    ]
    with_blueprints = parse_find(read("find_multiple.json"), blueprints=True)
    assert with_blueprints[-1].name == "anbox-cloud-appliance" and with_blueprints[-1].blueprint
    assert with_blueprints[-1].release == "Anbox Cloud Appliance"


def test_instance_model_helpers() -> None:
    assert Instance(name="a", state="Starting").is_transitional
    assert Instance(name="a", state="Deleted").is_deleted
    assert Instance(name="a", state="Running", ipv4=["N/A", "192.168.64.5"]).address == "192.168.64.5"


def test_parse_human_size_reads_what_multipass_get_prints() -> None:
    from devorch_tui.services.multipass_models import InstanceResources, parse_human_size

    assert parse_human_size("4.0GiB") == 4 * 1024**3
    assert parse_human_size("950.4MiB") == round(950.4 * 1024**2)
    assert parse_human_size("512B") == 512
    assert parse_human_size("1073741824") == 1024**3
    for bad in ("", "4G", "٣GiB", "lots"):
        assert parse_human_size(bad) is None, bad
    resources = InstanceResources.from_settings("2\n", "4.0GiB\n", "20.0GiB\n")
    assert (resources.cpus, resources.memory, resources.disk) == (2, 4 * 1024**3, 20 * 1024**3)
    assert InstanceResources.from_settings("²", "", "") == InstanceResources()
