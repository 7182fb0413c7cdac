"""Which consumer URLs we are willing to call: https, and only on the public internet.

A callback URL is chosen by a client, so without this check it would let any client make our
workers call our own network (SSRF). The check runs at registration and again at send time,
because a name can resolve elsewhere later. At send time :func:`pinned_target` resolves the name
once, checks every address, and hands back the checked address: the sender connects to exactly
that address (Host header and TLS SNI/certificate check still use the name), so a DNS rebinding
between the check and the connect cannot steer the request elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import idna

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}
_FORBIDDEN_SUFFIXES = (".localhost", ".internal", ".local")
_PRIVATE_MESSAGE = "must not point at a private, loopback or link-local address"
HIDDEN_QUERY = "…"  # what a query string (often a token) is shown as


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why, for the client."""


@dataclass(frozen=True)
class Target:
    """Where one request goes: the checked ``address`` to connect to, and the name it is for."""

    scheme: str
    host: str  # the name from the URL: Host header, SNI and certificate check
    port: int
    address: str  # the resolved and checked IP the connection is made to
    path: str  # path and query, as sent in the request line

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS.get(self.scheme)
        return name if self.port == default else f"{name}:{self.port}"


# What ``ipaddress`` calls not globally reachable in Python 3.13 (the IANA special-purpose
# registries); older Pythons miss some (192.0.0.8, 6to4), so these back up ``is_global``.
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "64:ff9b:1::/48",  # NAT64 local use: where the IPv4 sits is the operator's choice
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",  # 6to4
        "3fff::/20",
        "fc00::/7",
        "fe80::/10",
    )
)
# Prefixes whose last 32 bits are an IPv4 address the packet ends up at.
_IPV4_IN_LOW_BITS = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "64:ff9b::/96",  # NAT64 well-known prefix
        "::/96",  # IPv4-compatible
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
    )
)
_LOW_32_BITS = 0xFFFFFFFF
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses an IPv6 address leads to (6to4, Teredo, NAT64, compatible, ...)."""
    if address.sixtofour:
        return (address.sixtofour,)
    if address.teredo:
        return address.teredo
    if any(address in net for net in _IPV4_IN_LOW_BITS):
        return (ipaddress.IPv4Address(int(address) & _LOW_32_BITS),)
    return ()


def _is_public(address: Address) -> bool:
    """Global unicast only: an allow-list, so a range nobody thought of stays refused."""
    return (
        address.is_global
        and not address.is_multicast
        and not any(address in net for net in _NOT_GLOBAL if net.version == address.version)
    )


def _forbidden(address: Address) -> bool:
    """Anything but a global unicast address, also when it wraps an IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:  # ::ffff:a.b.c.d is just a.b.c.d
            return not _is_public(address.ipv4_mapped)
        if not all(_is_public(v4) for v4 in _embedded_ipv4(address)):
            return True
    return not _is_public(address)


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"host {host!r} does not resolve") from exc
    addresses = sorted({str(info[4][0]).split("%", 1)[0] for info in infos})
    if not addresses:
        raise UnsafeUrl(f"host {host!r} does not resolve")
    return addresses


def a_label(host: str) -> str:
    """The ASCII (IDNA A-label) form of ``host``: what DNS, TLS and the Host header use."""
    if host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise UnsafeUrl("host is not a valid internationalised domain name") from None


def safe_url(url: str) -> str:
    """``url`` as logs, timelines and the console may show it: no credentials, no query."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(unparsable URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    query = HIDDEN_QUERY if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _check_syntax(url: str, allow_http: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an absolute URL we may call, before any DNS; the host in
    its ASCII form, so that a Unicode name stored earlier is still deliverable."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl("must be an absolute https URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("must be an absolute https URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise UnsafeUrl("must be an absolute https URL")
    if parts.username or parts.password:
        raise UnsafeUrl("must not carry credentials")
    host = a_label(parts.hostname)
    if not allow_http:
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and _forbidden(literal):
            raise UnsafeUrl(_PRIVATE_MESSAGE)
        if host == "localhost" or host.endswith(_FORBIDDEN_SUFFIXES):
            raise UnsafeUrl(_PRIVATE_MESSAGE)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return parts.scheme, host, port or DEFAULT_PORTS[parts.scheme], path


def _checked_addresses(host: str, port: int, allow_http: bool) -> list[str]:
    addresses = resolve(host, port)
    if not allow_http and any(_forbidden(ipaddress.ip_address(a)) for a in addresses):
        raise UnsafeUrl("resolves to a private, loopback or link-local address")
    return addresses


def check_consumer_url(url: str, allow_http: bool, *, resolve_dns: bool = True) -> None:
    """Raise UnsafeUrl unless ``url`` is an https URL whose host is public.

    With ``allow_http`` (dev and tests only) http and loopback hosts are accepted too. A Unicode
    host is refused with its A-label in the message: we store what we send, and a consumer's
    certificate names the A-label.
    """
    _, host, port, _ = _check_syntax(url, allow_http)
    if host != (urlsplit(url).hostname or ""):
        raise UnsafeUrl(f"use the ASCII (IDNA) form of the host: {host}")
    if resolve_dns and not allow_http:
        _checked_addresses(host, port, allow_http)


def pinned_target(url: str, allow_http: bool) -> Target:
    """Resolve ``url`` once at send time, check every address, and pin the first checked one."""
    scheme, host, port, path = _check_syntax(url, allow_http)
    addresses = _checked_addresses(host, port, allow_http)
    ipv4 = [a for a in addresses if ":" not in a]
    return Target(scheme, host, port, (ipv4 or addresses)[0], path)
