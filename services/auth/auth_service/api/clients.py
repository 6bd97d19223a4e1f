"""Who is calling: the client's address, through the proxies this service trusts."""

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from aiohttp import web

# Longer hops are not addresses: kept only as far as a key needs.
MAX_ADDRESS_CHARS = 64


class ClientAddresses:
    """The client address of a request: the peer's, unless the peer is a trusted proxy, in which
    case X-Forwarded-For is read from the right, each hop added by a trusted proxy, until the
    first address that is not a trusted proxy's. A client's own X-Forwarded-For entries are thus
    never believed: the proxy appends the address it saw after them."""

    def __init__(self, trusted_proxies: Iterable[IPv4Network | IPv6Network]) -> None:
        self._trusted = tuple(trusted_proxies)

    def of(self, request: web.Request) -> str | None:
        """The address, or None for a trusted proxy's own call (no X-Forwarded-For)."""
        address = _normal(request.remote or "")
        if not self._is_trusted(address):
            return address
        hops = [
            hop.strip()
            for value in request.headers.getall("X-Forwarded-For", [])
            for hop in value.split(",")
            if hop.strip()
        ]
        if not hops:
            return None
        while hops:
            address = _normal(hops.pop())
            if not self._is_trusted(address):
                return address
        return address

    def _is_trusted(self, address: str) -> bool:
        parsed = _parse(address)
        return parsed is not None and any(parsed in network for network in self._trusted)


def _parse(address: str) -> IPv4Address | IPv6Address | None:
    try:
        parsed = ip_address(address)
    except ValueError:
        return None
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def _normal(address: str) -> str:
    parsed = _parse(address)
    return str(parsed) if parsed is not None else address[:MAX_ADDRESS_CHARS] or "unknown"
