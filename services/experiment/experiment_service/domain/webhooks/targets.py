"""Where webhooks may go: http(s) targets that resolve only to public addresses (no SSRF into
the service's own network), unless the allow-list names the host.

The check runs when a subscription is saved and again for every try: the dispatcher connects
only to the addresses it checked (see dispatcher.sender), so a name that re-resolves to a
private address later (DNS rebinding) is refused then too.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import SplitResult, urlsplit

from experiment_service.domain.errors import WebhookTargetRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Awaitable[list[str]]]

SCHEMES = {"http": 80, "https": 443}
# Cloud instance metadata services (AWS/GCP/Azure/OpenStack, AWS ECS and IPv6, Alibaba, Oracle).
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)


# IPv6 addresses that carry an IPv4 address the packet ends up at: judged as that address.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Site-local (deprecated, RFC 3879): routed inside a site like a private range, yet Python
# counts it neither private nor reserved.
SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")
# A URL with these is refused as written: clients and proxies disagree about them (header
# injection through CR/LF, `\` read as `/` by some and as part of the user info by others).
FORBIDDEN_CHARACTERS = frozenset("\\") | frozenset(map(chr, range(0x21))) | {"\x7f"}


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped (`::ffff:0:0/96`), 6to4 (`2002::/16`) or NAT64
    (`64:ff9b::/96`) address leads to."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why a webhook may not go to `address`, or None if it may."""
    address = embedded_ipv4(address) or address
    checks = (
        (address in METADATA, "a cloud metadata address"),
        (address in SITE_LOCAL, "a site-local address"),
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for refused, reason in checks if refused), None)


async def resolve_host(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class TargetGuard:
    def __init__(
        self, allowed_hosts: tuple[str, ...] = (), resolve: Resolve = resolve_host
    ) -> None:
        self._allowed = frozenset(entry.lower() for entry in allowed_hosts)
        self._resolve = resolve

    def allows(self, host: str, port: int) -> bool:
        """The allow-list names `host` (any port) or `host:port`."""
        host = host.lower()
        shown = f"[{host}]" if ":" in host else host
        return bool({host, shown, f"{shown}:{port}"} & self._allowed)

    @staticmethod
    def parse(url: str) -> tuple[SplitResult, str, int]:
        """The URL, its host and port; refused unless it is an absolute http(s) URL."""
        if not FORBIDDEN_CHARACTERS.isdisjoint(url):
            raise WebhookTargetRefused("the URL holds a space, a control character or a backslash")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise WebhookTargetRefused("not a valid URL") from None
        if parts.scheme not in SCHEMES:
            raise WebhookTargetRefused("only http and https URLs are allowed")
        if not parts.hostname:
            raise WebhookTargetRefused("the URL has no host")
        return parts, parts.hostname, port or SCHEMES[parts.scheme]

    async def check_url(self, url: str) -> None:
        """Refuses the URL unless it is allowed or every address of its host is public."""
        _, host, port = self.parse(url)
        await self.addresses(host, port)

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for `host`; refused if any is not allowed."""
        literal = _literal(host)
        if self.allows(host, port):
            return [host] if literal is not None else await self._lookup(host, port)
        if literal is not None:
            addresses = [host]
        else:
            addresses = await self._lookup(host, port)
        for address in addresses:
            reason = address_refusal(ipaddress.ip_address(address.split("%", 1)[0]))
            if reason is not None:
                shown = host if literal is not None else f"{host} resolves to {address}, which"
                raise WebhookTargetRefused(f"{shown} is {reason}")
        return addresses

    async def _lookup(self, host: str, port: int) -> list[str]:
        try:
            addresses = await self._resolve(host, port)
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise WebhookTargetRefused(f"{host} does not resolve")
        return addresses
