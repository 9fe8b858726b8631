"""Which destinations a webhook may have (services.dispute.delivery.urls), and the retry
schedule's back-off."""

from __future__ import annotations

import pytest

from services.dispute.delivery.urls import UnsafeDestination, check_url
from services.dispute.delivery.webhooks import backoff


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://93.184.215.14/h", "https"),
        ("ftp://93.184.215.14/h", "https"),
        ("https:///nohost", "https"),
        ("https://127.0.0.1/h", "public_address"),
        ("https://10.1.2.3/h", "public_address"),
        ("https://172.16.0.1/h", "public_address"),
        ("https://192.168.1.1/h", "public_address"),
        ("https://169.254.169.254/latest/meta-data", "public_address"),  # cloud metadata
        ("https://100.64.0.1/h", "public_address"),  # carrier-grade NAT
        ("https://0.0.0.0/h", "public_address"),
        ("https://[::1]/h", "public_address"),
        ("https://[fd00::1]/h", "public_address"),
        ("https://[::ffff:127.0.0.1]/h", "public_address"),
        ("https://localhost/h", "public_address"),
        ("https://api.localhost/h", "public_address"),
        ("https://u:p@93.184.215.14/h", "no_credentials"),
        ("https://93.184.215.14/h#x", "no_fragment"),
        ("https://93.184.215.14:99999/h", "url"),
        ("https://93.184.215.14/" + "a" * 2048, "max_length"),
        ("https://no-such-host.invalid/h", "resolvable"),
    ],
)
def test_private_loopback_and_plain_http_destinations_are_refused(url: str, rule: str) -> None:
    with pytest.raises(UnsafeDestination) as refused:
        check_url(url, allow_private=False)
    assert refused.value.rule == rule


def test_public_https_destinations_are_accepted() -> None:
    check_url("https://93.184.215.14/hooks?x=1", allow_private=False)
    check_url("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/h", allow_private=False)


def test_the_development_setting_allows_http_and_private_addresses_only() -> None:
    check_url("http://127.0.0.1:8080/hooks", allow_private=True)
    check_url("https://10.0.0.5/hooks", allow_private=True)
    with pytest.raises(UnsafeDestination):
        check_url("ftp://127.0.0.1/h", allow_private=True)


def test_the_back_off_grows_then_repeats_its_last_step() -> None:
    schedule = (5, 30, 120)
    assert [backoff(schedule, n) for n in range(1, 6)] == [5, 30, 120, 120, 120]


def test_without_a_nats_url_the_delivery_process_does_not_load_nats() -> None:
    import subprocess
    import sys

    code = (
        "import sys, services.dispute.delivery.__main__, services.dispute.api; "
        "sys.exit('nats' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
