"""Which consumer URLs we are willing to call: https, and only on the public internet.

A callback URL is chosen by a client, so without this check it would let any client make our
workers call our own network (SSRF). The check runs at registration and again at send time,
because a name can resolve elsewhere later (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048


class UnsafeUrl(ValueError):
    """The URL may not be called; the message says why, for the client."""


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
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
    return sorted({info[4][0] for info in infos})


def check_consumer_url(url: str, allow_http: bool, *, resolve_dns: bool = True) -> None:
    """Raise UnsafeUrl unless ``url`` is an https URL whose host is public.

    With ``allow_http`` (dev and tests only) http and loopback hosts are accepted too.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl("must be an absolute https URL")
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise UnsafeUrl("must be an absolute https URL")
    if parts.username or parts.password:
        raise UnsafeUrl("must not carry credentials")
    if allow_http:
        return
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if _forbidden(literal):
            raise UnsafeUrl("must not point at a private, loopback or link-local address")
        return
    if host == "localhost" or host.endswith((".localhost", ".internal", ".local")):
        raise UnsafeUrl("must not point at a private, loopback or link-local address")
    if resolve_dns:
        for address in resolve(host, parts.port or 443):
            if _forbidden(ipaddress.ip_address(address)):
                raise UnsafeUrl("resolves to a private, loopback or link-local address")
