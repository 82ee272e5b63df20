"""Which webhook URLs a node will call.

Only http(s) URLs with a host, no credentials in the URL, never the node itself (its API
on any of its addresses). By default only public (globally routable) addresses: a member
must not be able to make the node call into its own private network (SSRF). A consortium
whose members' systems sit on a private network allows private addresses with
$COFAB_WEBHOOK_ALLOW_PRIVATE=1; the node itself stays refused. Names are resolved when
the webhook is registered and again before every delivery (a name that later resolves
to a refused address is not called), and redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from ledger.core.errors import InvalidInput

MAX_URL_LENGTH = 2048
_PORTS = {"http": 80, "https": 443}


def check_url(url: str, *, allow_private: bool, own: Iterable[tuple[str, int]] = ()) -> str:
    """`url` if the node may POST to it; InvalidInput naming what is wrong otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"the URL is longer than {MAX_URL_LENGTH} characters", field="url")
    try:
        parts = urlsplit(url.strip())
        hostname = parts.hostname
    except ValueError:
        raise InvalidInput(f"webhook URL {url!r} is not a URL", field="url") from None
    scheme = parts.scheme.lower()
    if scheme not in _PORTS or not hostname:
        raise InvalidInput(
            f"webhook URL {url!r} must be an http:// or https:// URL with a host", field="url"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("a webhook URL must not carry a user name or password", field="url")
    try:
        port = parts.port or _PORTS[scheme]
    except ValueError:
        raise InvalidInput(f"webhook URL {url!r} has an invalid port", field="url") from None
    host = hostname.lower()
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        raise InvalidInput(f"the webhook host {host!r} does not resolve", field="url") from None
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found}
    own_set = {(h.lower().strip("[]"), p) for h, p in own}
    own_ips = _own_ips(own_set)
    for ip in addresses:
        mine = port in {p for _, p in own_set} and (
            ip.is_loopback or ip.is_unspecified or ip in own_ips or (host, port) in own_set
        )
        if mine:
            raise InvalidInput("a webhook must not point at this node itself", field="url")
        if not allow_private and not ip.is_global:
            raise InvalidInput(
                f"webhook host {host!r} resolves to {ip}, a private or reserved address: "
                "this node calls public addresses only (a consortium node may allow private "
                "ones with COFAB_WEBHOOK_ALLOW_PRIVATE=1)",
                field="url",
            )
    return url.strip()


def _own_ips(own: set[tuple[str, int]]) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    ips: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for host, port in own:
        try:
            for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
                ips.add(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except (OSError, UnicodeError, ValueError):
            continue
    return ips
