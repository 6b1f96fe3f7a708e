"""Endpoint URLs and the addresses a delivery may connect to (the SSRF guard's rules).

``check_url`` is pure (scheme, length, host, port); ``check_address`` decides on one
resolved IP; ``resolve`` is the one DNS lookup, whose answer the sender then connects to
(pinned), so a name cannot resolve to a public address for the check and a private one
for the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LEN = 2048
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class UrlRefused(ValueError):
    """The URL or the address it resolves to may not be delivered to."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str  # as written, lower-case, no brackets
    port: int
    path: str  # path and query, at least "/"


def check_url(url: str, *, allow_http: bool) -> Target:
    """The parts of an endpoint URL, or ``UrlRefused`` saying why not.

    ``https`` always; ``http`` only when ``allow_http`` (development) and the host is a
    loopback name or address.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LEN:
        raise UrlRefused(f"the url must be 1 to {MAX_URL_LEN} characters")
    if not url.isascii() or any(c.isspace() or ord(c) < 32 for c in url):
        raise UrlRefused("the url must be ASCII without spaces (punycode an IDN host)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("the url is malformed") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("https", "http"):
        raise UrlRefused("the url must be https://")
    if not host:
        raise UrlRefused("the url has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("the url must not carry credentials")
    if parts.fragment:
        raise UrlRefused("the url must not have a fragment")
    if scheme == "http" and not (allow_http and is_loopback_host(host)):
        raise UrlRefused(
            "the url must be https:// (http:// only to a loopback host in development)"
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def is_loopback_host(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(address: str, *, allow_private: bool) -> None:
    """``UrlRefused`` unless a delivery may connect to ``address`` (an IP)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        ip = _embedded_ipv4(ip) or ip
    if ip.is_multicast or ip.is_unspecified or (ip.is_reserved and not ip.is_private):
        raise UrlRefused(f"the address {ip} is not a unicast host")
    if allow_private:
        return
    if ip.is_loopback or ip.is_link_local or ip.is_private or not ip.is_global:
        raise UrlRefused(f"the address {ip} is private, loopback or link-local")


# IPv6 forms that reach an IPv4 address (a gateway translates them): checked as that
# address, so 64:ff9b::a00:1 is refused like 10.0.0.1.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
        return ip.ipv4_mapped
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64) or ip in _SIX_TO_FOUR:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::10.0.0.1
        return ipaddress.IPv4Address(int(ip))
    return None


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UrlRefused(f"the host {host} does not resolve ({exc.strerror})") from None
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = str(sockaddr[0]).partition("%")[0]
        if addr not in seen:
            seen.append(addr)
    if not seen:
        raise UrlRefused(f"the host {host} does not resolve")
    return seen


async def pinned_address(target: Target, *, allow_private: bool) -> str:
    """The address to connect to: every address the name resolves to must be allowed
    (a name with one private address among public ones is refused whole)."""
    addresses = await resolve(target.host, target.port)
    for address in addresses:
        check_address(address, allow_private=allow_private)
    return addresses[0]
