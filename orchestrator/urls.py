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
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}
_FORBIDDEN_SUFFIXES = (".localhost", ".internal", ".local")
_PRIVATE_MESSAGE = "must not point at a private, loopback or link-local address"


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


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Anything but a global unicast address (metadata 169.254.169.254 is link-local)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"host {host!r} does not resolve") from exc
    addresses = sorted({str(info[4][0]).split("%", 1)[0] for info in infos})
    if not addresses:
        raise UnsafeUrl(f"host {host!r} does not resolve")
    return addresses


def _check_syntax(url: str, allow_http: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an absolute URL we may call, before any DNS."""
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
    host = parts.hostname
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

    With ``allow_http`` (dev and tests only) http and loopback hosts are accepted too.
    """
    _, host, port, _ = _check_syntax(url, allow_http)
    if resolve_dns and not allow_http:
        _checked_addresses(host, port, allow_http)


def pinned_target(url: str, allow_http: bool) -> Target:
    """Resolve ``url`` once at send time, check every address, and pin the first checked one."""
    scheme, host, port, path = _check_syntax(url, allow_http)
    addresses = _checked_addresses(host, port, allow_http)
    ipv4 = [a for a in addresses if ":" not in a]
    return Target(scheme, host, port, (ipv4 or addresses)[0], path)
