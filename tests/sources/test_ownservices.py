"""The deployment's own listeners are never targets: by resolved address and port, whatever the allowlist.

The attack of issue 26: a camera URL or callback URL pointed at Flower (``/api/worker/shutdown/…``), the
broker or a worker's metrics. Each spelling of "this machine" must be caught, not only the URL's text.
"""

from __future__ import annotations

import socket

import pytest

import errors
from settings import Settings
from sources.netguard import CameraAllowlist
from sources.ownservices import Listener, OwnServices

EVERYTHING = CameraAllowlist.parse("0.0.0.0/0, ::/0")
FLOWER = 5555


def _flower_on_loopback() -> CameraAllowlist:
    """``make run``'s Flower (127.0.0.1:5555) behind an allowlist that allows every address."""
    return EVERYTHING.excluding(OwnServices.parse(f"127.0.0.1:{FLOWER}"))


def _refused(allowlist: CameraAllowlist, url: str) -> str:
    with pytest.raises(errors.CameraNotAllowed) as caught:
        allowlist.check_url(url)
    assert caught.value.code == "camera_not_allowed"
    return caught.value.message


def _own_interface_address() -> str:
    """An address of this machine's own network interface (not loopback): where the default route leaves."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: connect only picks the source address
        except OSError:
            pytest.skip("this machine has no route off loopback, so no interface address to try")
        address: str = probe.getsockname()[0]
    return address


@pytest.mark.parametrize(
    "url",
    [
        f"http://127.0.0.1:{FLOWER}/api/workers?refresh=true",
        f"http://localhost:{FLOWER}/api/worker/shutdown/rollcall-worker%40host",
        f"http://127.0.0.2:{FLOWER}/",  # all of 127.0.0.0/8 is this machine
        f"http://[::1]:{FLOWER}/",  # Flower bound to 0.0.0.0/:: answers on IPv6 loopback too
        f"http://[::ffff:127.0.0.1]:{FLOWER}/",  # IPv4-mapped IPv6
        f"http://[::ffff:7f00:1]:{FLOWER}/",
        f"http://2130706433:{FLOWER}/",  # 127.0.0.1 as one integer
        f"http://0x7f.1:{FLOWER}/",
    ],
)
def test_every_spelling_of_this_machine_on_a_service_port_is_refused(url: str) -> None:
    message = _refused(_flower_on_loopback(), url)
    assert "rollcall's own services" in message and str(FLOWER) in message


def test_the_machines_own_interface_address_reaches_a_loopback_named_service_too() -> None:
    """A service bound to 0.0.0.0 answers on the LAN address as well: "127.0.0.1:5555" protects both."""
    address = _own_interface_address()
    assert not address.startswith("127.")
    _refused(_flower_on_loopback(), f"http://{address}:{FLOWER}/api/workers")
    allowed = EVERYTHING.check_url(f"http://{address}:{FLOWER}/").addresses
    assert allowed == (address,), "the allowlist alone lets it through: only the rule refuses it"


def test_other_ports_of_this_machine_stay_cameras() -> None:
    """The README's "Try it" camera on 127.0.0.1:8080 is still allowed beside Flower's port."""
    assert _flower_on_loopback().check_url("http://127.0.0.1:8080/two_people.jpg").addresses == ("127.0.0.1",)


def test_a_service_named_by_address_elsewhere_is_matched_by_that_address_only() -> None:
    """A compose service (``flower`` → 172.18.0.5) is refused at its address in any IPv6 wrapping."""
    allowlist = EVERYTHING.excluding(OwnServices.parse("172.18.0.5:5555,[fd00::5]:9808"))
    _refused(allowlist, "http://172.18.0.5:5555/api/workers")
    _refused(allowlist, "http://[::ffff:172.18.0.5]:5555/api/workers")
    _refused(allowlist, "http://[fd00::5]:9808/metrics")
    allowlist.check_url("http://172.18.0.5:5556/")  # another port
    allowlist.check_url("http://172.18.0.6:5555/")  # another host


def test_a_service_named_by_host_name_is_resolved_at_the_check() -> None:
    """Names (compose services) are resolved when a URL is checked: ``localhost`` stands in for one here."""
    allowlist = EVERYTHING.excluding(OwnServices.parse("localhost:7001"))
    _refused(allowlist, "http://127.0.0.1:7001/")
    allowlist.check_url("http://127.0.0.1:7002/")
    unresolvable = EVERYTHING.excluding(OwnServices.parse("flower.rollcall-test.invalid:5555"))
    unresolvable.check_url("http://10.1.2.3:5555/")  # nothing answers at a name that does not resolve


def test_settings_refuse_the_broker_the_database_flower_and_the_api_by_default() -> None:
    settings = Settings(
        camera_allow="0.0.0.0/0,::/0",
        broker_url="amqp://guest:guest@10.0.0.7//",
        result_backend="redis://:pw@10.0.0.8:6380/1",
        database_url="postgresql+psycopg://rollcall:pw@10.0.0.9/rollcall",
        worker_metrics_port=9808,
    )
    listeners = settings.own_services().listeners
    assert {
        Listener("10.0.0.7", 5672),  # AMQP
        Listener("10.0.0.7", 15672),  # RabbitMQ's management HTTP API beside it
        Listener("10.0.0.8", 6380),
        Listener("10.0.0.9", 5432),
        Listener("0.0.0.0", 9808),  # the worker's metrics, on every address of this machine
        Listener("127.0.0.1", 8000),  # the API and Flower as make run serves them
        Listener("127.0.0.1", 5555),
    } <= listeners
    for url in (
        "http://10.0.0.7:15672/api/queues",
        "http://10.0.0.8:6380/",
        "http://10.0.0.9:5432/",
        "http://127.0.0.1:9808/metrics",
        "http://127.0.0.1:5555/api/workers",
    ):
        _refused(settings.camera_allow, url)
    assert str(settings.camera_allow) == "0.0.0.0/0,::/0", "the allowlist itself reads as configured"


def test_service_endpoints_must_be_host_and_port() -> None:
    for bad in ("flower", "127.0.0.1", "http://flower:5555/x", "[::1]"):
        with pytest.raises(ValueError, match="is not host:port"):
            OwnServices.parse(bad)
    assert str(OwnServices.parse(" flower:5555 , [::1]:8000 ,")) == "[::1]:8000,flower:5555"
