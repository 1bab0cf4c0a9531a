"""Where the relay may send: https:// to public hosts; this machine only where the relay runs next to
its destinations (the local stack, the tests). Every spelling of an internal address is refused."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clay_relay.destination_urls import RefusedDestination, check_destination, refusal

PUBLIC = [
    "https://api.clay.com/v3/sources/webhook/pull-in-data-123456",
    "https://hooks.slack.com/services/T000/B000/XXXX",
    "https://hooks.zapier.com/hooks/catch/123/abc/",
    "https://app.loops.so/api",
    "https://directus.example.com:8443/",
    "https://1.1.1.1/hook",
    "https://[2606:4700:4700::1111]/hook",
    "https://bücher.de/hook",
]
INTERNAL = {
    "http://169.254.169.254/latest/meta-data/": "instance metadata service",
    "https://169.254.169.254/latest/meta-data/": "instance metadata service",
    "https://[fd00:ec2::254]/": "instance metadata service",
    "https://[64:ff9b::a9fe:a9fe]/": "instance metadata service",  # NAT64 of 169.254.169.254
    "http://[::1]/": "this machine",
    "http://0x7f000001/": "this machine",
    "https://2130706433/": "this machine",
    "https://0177.0.0.1/": "this machine",
    "https://0x7f.0.0.1/": "this machine",
    "https://127.1/": "this machine",
    "https://0/": "this machine",
    "https://[::ffff:127.0.0.1]/": "this machine",
    "https://[::ffff:7f00:1]/": "this machine",
    "https://[2002:7f00:1::]/": "this machine",  # 6to4 of 127.0.0.1
    "https://localhost/": "this machine",
    "https://api.localhost/": "this machine",
    "https://10.0.0.5/": "private address",
    "https://172.16.3.4/": "private address",
    "https://192.168.1.1/": "private address",
    "https://0xc0a80101/": "private address",
    "https://[fd12:3456::1]/": "private address",
    "https://169.254.10.1/": "link-local address",
    "https://[fe80::1%25eth0]/": "link-local address",
    "https://100.64.0.1/": "reserved address",
    "https://224.0.0.1/": "multicast address",
    "https://metadata.google.internal/": "internal name",
    "https://printer.local/": "internal name",
    "https://intranet/": "internal name",
    "https://08.0.0.1/": "neither a host name nor an address",
    "https://1.2.3.4.5/": "neither a host name nor an address",
}
MALFORMED = {
    "http://api.clay.com/v3/sources/webhook/x": "only https://",
    "ftp://api.clay.com/": "only https://",
    "api.clay.com/v3": "only https://",
    "https://user:pass@api.clay.com/hook": "credentials",
    "https://api.clay.com\\@127.0.0.1/": "backslash",
    "https://api.clay.com :443/": "space",
    "https://api.clay.com:port/": "not a URL",
}


@pytest.mark.parametrize("url", PUBLIC)
def test_https_to_a_public_host_is_allowed_anywhere(url):
    assert refusal(url) is None and refusal(url, local=True) is None
    assert check_destination(url) == url


@pytest.mark.parametrize(("url", "why"), INTERNAL.items(), ids=list(INTERNAL))
def test_internal_hosts_are_refused_in_every_spelling_naming_what_they_are(url, why):
    problem = refusal(url)
    assert problem is not None and why in problem
    with pytest.raises(RefusedDestination, match=why):
        check_destination(url)


@pytest.mark.parametrize(("url", "why"), MALFORMED.items(), ids=list(MALFORMED))
def test_other_schemes_credentials_and_ambiguous_urls_are_refused(url, why):
    assert why in (refusal(url) or "")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:3001/clay/webhooks/leads-1",
        "https://127.0.0.1:3001/",
        "http://localhost:3001/slack",
        "http://[::1]:3001/",
        "http://0.0.0.0:3001/loops/api",
        "http://host.docker.internal:3001/loops/api",
    ],
)
def test_this_machine_is_allowed_only_where_local_destinations_are(url):
    assert refusal(url, local=True) is None
    assert "this machine" in (refusal(url) or "")


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/", "https://10.0.0.5/", "https://192.168.1.1/", "http://api.clay.com/"]
)
def test_local_destinations_still_refuse_other_internal_hosts_and_plain_http_elsewhere(url):
    assert refusal(url, local=True) is not None


def spellings(address: ipaddress.IPv4Address) -> list[str]:
    """Ways a resolver reads `address`: dotted, one number (decimal, hex, octal), short forms, hex bytes."""
    value, octets = int(address), address.packed
    return [
        str(address),
        str(value),
        hex(value),
        "0" + oct(value)[2:],
        ".".join(hex(o) for o in octets),
        ".".join("0" + oct(o)[2:] for o in octets),
        f"{octets[0]}.{value & 0xFFFFFF}",
        f"{octets[0]}.{octets[1]}.{value & 0xFFFF}",
        f"[::ffff:{address}]",
    ]


@given(st.ip_addresses(v=4))
def test_every_spelling_of_an_ipv4_address_is_judged_as_that_address(address):
    public = address.is_global and not address.is_multicast
    for host in spellings(address):
        assert (refusal(f"https://{host}/hook") is None) == public, host
