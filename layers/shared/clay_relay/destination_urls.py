"""Which URLs the relay may send to: `https://` to a public host. Clay's webhook URLs, Slack's and
Zapier's, the Directus API and Loops' API base all are; an internal address (the instance metadata
service at 169.254.169.254, this machine, a private network) never is a destination.

Where the relay runs next to its destinations (the local stack and the tests,
ALLOW_LOCAL_DESTINATIONS), `http://` or `https://` to this machine is allowed too: loopback
addresses, `localhost` and `host.docker.internal` (sam local invoke's way to the host).

A host is judged by what it says, in every spelling a resolver takes for an address: 2130706433,
0x7f000001, 0177.0.0.1 and 127.1 are all 127.0.0.1; IPv6 that carries an IPv4 address
(`::ffff:127.0.0.1`, 6to4, NAT64) is judged by that address. Names that always mean this machine or
a private network (`localhost`, `*.localhost`, `*.local`, `*.internal`, `*.home.arpa`, …) are
refused; other names are not resolved here (a public name pointing at a private address is the
DNS owner's doing, not a configuration mistake this catches).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

LOCAL_NAMES = ("localhost", "host.docker.internal")
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet")
INTERNAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "broadcasthost")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}  # AWS's
# Characters two URL parsers may split differently (urllib and urllib3): refused outright.
_AMBIGUOUS = re.compile(r"[\\\s\x00-\x1f\x7f]")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")


class RefusedDestination(ValueError):
    """The URL is no place for the relay to send to; the message says why (naming the host only)."""


def check_destination(url: str, *, local: bool = False) -> str:
    """`url`, when the relay may send to it; RefusedDestination saying why not."""
    problem = refusal(url, local=local)
    if problem:
        raise RefusedDestination(problem)
    return url


def refusal(url: str, *, local: bool = False) -> str | None:
    """Why the relay may not send to `url` (None: it may). `local`: this machine is allowed too."""
    if _AMBIGUOUS.search(url):
        return "the URL holds a backslash, a space or a control character"
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number
    except ValueError as error:
        return f"not a URL ({error})"
    if parts.scheme not in ("https", "http") or not host:
        return "only https:// URLs are allowed"
    if "@" in parts.netloc:
        return "a URL with credentials (user:password@) is not allowed"
    host = host.rstrip(".")
    if local_host(host):
        return None if local else f"{_spelled(host)} is this machine, not a public host"
    if problem := internal_host(host):
        return problem
    if parts.scheme != "https":
        return f"only https:// URLs are allowed{' (http:// only to this machine)' if local else ''}"
    return None


def local_host(host: str) -> bool:
    """This machine: a loopback or unspecified address, `localhost` (`*.localhost`), `host.docker.internal`."""
    address = host_address(host)
    if address is not None:
        return address.is_loopback or address.is_unspecified
    name = host.lower().rstrip(".")
    return name in LOCAL_NAMES or name.endswith(".localhost")


def internal_host(host: str) -> str | None:
    """Why `host` is not a public host (None: it is, as far as its name or address says)."""
    name = host.lower().rstrip(".")
    address = host_address(name)
    if address is None:
        if _looks_numeric(name):
            return f"{name[:100]} is neither a host name nor an address"
        if name in INTERNAL_NAMES or name.endswith(INTERNAL_SUFFIXES) or "." not in name:
            return f"{name[:100]} is an internal name, not a public host"
        return None
    if not (address.is_global and not address.is_multicast):
        return f"{_spelled(name)} is {_kind(address)}, not a public address"
    return None


def _spelled(host: str) -> str:
    """The host as written, and the address it spells when that reads differently (0x7f000001)."""
    address = host_address(host)
    shown = host[:100]
    return f"{shown} ({address})" if address is not None and str(address) != host.strip("[]") else shown


def host_address(host: str) -> Address | None:
    """The address `host` spells (any form a resolver accepts), judged by the IPv4 address an IPv6
    one carries; None for a name."""
    name = host.strip("[]").split("%", 1)[0]  # an IPv6 zone (fe80::1%eth0) names an interface
    if ":" in name:
        try:
            v6 = ipaddress.IPv6Address(name)
        except ValueError:
            return None
        if v6.ipv4_mapped:
            return v6.ipv4_mapped
        if v6.sixtofour:
            return v6.sixtofour
        if v6 in NAT64:
            return ipaddress.IPv4Address(int(v6) & 0xFFFFFFFF)
        return v6
    return _inet_aton(name)


def _inet_aton(name: str) -> ipaddress.IPv4Address | None:
    """IPv4 as the C library's inet_aton reads it: 1 to 4 parts, each decimal, octal (leading 0) or
    hex (0x); the last part fills the bytes left (127.1, 2130706433)."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMBER.fullmatch(part) for part in parts):
        return None
    numbers = []
    for part in parts:
        if part[:2].lower() == "0x":
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not set(part) <= set("01234567"):
                return None
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *head, last = numbers
    if any(number > 255 for number in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = sum(number << (8 * (3 - position)) for position, number in enumerate(head)) + last
    return ipaddress.IPv4Address(value)


def _looks_numeric(name: str) -> bool:
    """A name whose last label is a number: no top-level domain is, so it is a mangled address."""
    return bool(_NUMBER.fullmatch(name.rsplit(".", 1)[-1]))


def _kind(address: Address) -> str:
    for kind, test in (
        ("the instance metadata service", address in METADATA),
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("a private address", address.is_private),
        ("a multicast address", address.is_multicast),
    ):
        if test:
            return kind
    return "a reserved address"
