"""Outbound HTTP to addresses that someone other than the operator chose.

A user's own provider URL (and later a tool's URL) could point at this server's loopback, the
cloud metadata service or the office network: server-side request forgery. Every such request
goes through a client made here, whose connections are checked *when they are opened*:

1. the host is read the way the operating system would read it (`2130706433`, `0x7f000001`
   and `0177.0.0.1` are all 127.0.0.1; `::ffff:127.0.0.1` is too);
2. it is resolved once, and every address it resolves to is checked: loopback, private,
   link-local, multicast, reserved, unspecified and shared addresses are refused, and so is
   a name outside the allow-list when there is one;
3. the socket is opened to the checked address itself (TLS still verifies the name), so a
   name that resolves differently a moment later (DNS rebinding) cannot slip through;
4. redirects are refused (and every new connection would be checked again anyway);
5. no proxy from the environment is used: a proxy would resolve the name itself.

`guarded_client()` builds such an `httpx2.AsyncClient`; `check_url()` validates a URL when it
is stored. The policy (`EgressPolicy`) comes from the settings (`policy_from_settings`).
"""

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# Names that only ever mean "inside": refused before any lookup, so the error is clear
# even where they do not resolve (the address check would refuse them where they do).
_INSIDE_NAMES = ("localhost", "metadata.google.internal", "metadata.goog", "metadata")
_INSIDE_SUFFIXES = (".localhost", ".internal", ".local", ".home.arpa", ".localdomain")
# What inet_aton reads as an IPv4 address: decimal, octal or hex parts, 1 to 4 of them.
_LEGACY_IPV4 = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.I)
# IPv6 prefixes that carry an IPv4 address inside (NAT64, IPv4-compatible).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(httpx2.ConnectError):
    """A destination the policy does not allow. `reason` is for the server log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidURL(ValueError):
    """A URL that cannot be stored; the message is one sentence for the user."""


@dataclass(frozen=True)
class EgressPolicy:
    """Where guarded requests may go.

    `allowed_hosts` (exact names, or `*.example.com` for a domain and its subdomains) and
    `allowed_networks`: when either is non-empty, a destination must match one of them.
    `private_exemptions`: networks the operator runs trusted services in (for example a LAN
    inference server); addresses inside them are not refused as private. Empty by default.
    """

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    private_exemptions: tuple[IPNetwork, ...] = ()

    @property
    def has_allow_list(self) -> bool:
        return bool(self.allowed_hosts or self.allowed_networks)


def parse_policy(
    *, allow_list: Iterable[str], private_exemptions: Iterable[str] = ()
) -> EgressPolicy:
    """A policy from settings' strings; raises ValueError naming a bad entry."""
    hosts, networks = set(), []
    for entry in (item.strip().lower() for item in allow_list):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            name = entry.removeprefix("*.")
            if not _valid_hostname(name):
                raise ValueError(f"{entry!r} is neither a host name nor a network") from None
            hosts.add(entry.rstrip("."))
    exempt = tuple(ipaddress.ip_network(item.strip(), strict=False) for item in private_exemptions)
    return EgressPolicy(
        allowed_hosts=frozenset(hosts),
        allowed_networks=tuple(networks),
        private_exemptions=exempt,
    )


# --- reading hosts and checking addresses ----------------------------------------------------


def literal_address(host: str) -> IPAddress | None:
    """The address a host names by itself, read as the system's resolver would, or None.

    Covers `[::1]`, `::ffff:7f00:1`, and IPv4's legacy forms (`2130706433`, `0x7f000001`,
    `0177.0.0.1`, `127.1`), which getaddrinfo turns into addresses without any lookup.
    """
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why this address is not a public destination, or None when it is."""
    inner = _embedded_ipv4(address)
    if inner is not None and (problem := address_problem(inner)):
        return f"{address} carries {inner}, which {problem.split(' ', 1)[1]}"
    for kind in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return f"{address} is {kind.replace('_', '-')}"
    if not address.is_global:  # shared address space (100.64/10), documentation ranges, ...
        return f"{address} is not a global address"
    return None


def _name_allowed(name: str, policy: EgressPolicy) -> bool:
    def matches(entry: str) -> bool:
        if entry.startswith("*."):  # the domain and its subdomains
            return name == entry[2:] or name.endswith(entry[1:])
        return name == entry

    return any(matches(entry) for entry in policy.allowed_hosts)


def _refuse_inside_name(host: str) -> str:
    """The host as compared (lower case, no brackets or final dot); refused if internal."""
    name = host.strip("[]").rstrip(".").lower()
    if name in _INSIDE_NAMES or name.endswith(_INSIDE_SUFFIXES):
        raise EgressRefused(f"{name} is an internal name")
    return name


def check_destination(
    *, host: str, addresses: list[IPAddress], policy: EgressPolicy
) -> list[IPAddress]:
    """The addresses, if every one of them may be connected to; else EgressRefused."""
    name = _refuse_inside_name(host)
    if not addresses:
        raise EgressRefused(f"{name} has no address")
    for address in addresses:
        exempt = any(address in network for network in policy.private_exemptions)
        if not exempt and (problem := address_problem(address)):
            raise EgressRefused(problem)
        if policy.has_allow_list and not (
            _name_allowed(name, policy)
            or any(address in network for network in policy.allowed_networks)
        ):
            raise EgressRefused(f"{name} ({address}) is not on the allow-list")
    return addresses


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for host (one lookup)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos)
    return list(found)


# --- the connection-time guard -----------------------------------------------------------


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """httpcore's network backend, resolving and checking before it connects to the result."""

    def __init__(
        self,
        *,
        policy: EgressPolicy,
        resolver: Resolver = system_resolver,
        inner: httpcore2.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy, self.resolver = policy, resolver
        self.inner = inner or httpcore2.AnyIOBackend()

    async def checked_addresses(
        self, host: str, port: int, timeout: float | None
    ) -> list[IPAddress]:
        literal = literal_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            _refuse_inside_name(host)  # before any lookup: such names may not even resolve
            try:
                with anyio.fail_after(timeout):
                    addresses = await self.resolver(host, port)
            except (OSError, UnicodeError) as error:
                raise httpcore2.ConnectError(f"{host} could not be resolved") from error
            except TimeoutError as error:
                raise httpcore2.ConnectTimeout(f"{host} could not be resolved in time") from error
        return check_destination(host=host, addresses=addresses, policy=self.policy)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await self.checked_addresses(host, port, timeout)
        failure: Exception | None = None
        for address in addresses:  # the checked addresses, never the name again
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        raise EgressRefused("Unix sockets are not a network destination")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx's transport over the guarded backend, refusing redirects."""

    def __init__(
        self,
        *,
        policy: EgressPolicy,
        resolver: Resolver = system_resolver,
        inner: httpcore2.AsyncNetworkBackend | None = None,
        limits: httpx2.Limits = httpx2.Limits(max_connections=100, max_keepalive_connections=20),
    ) -> None:
        super().__init__(trust_env=False, limits=limits)
        # httpx builds its pool without a way to pass a network backend; the pool is swapped
        # for one that uses ours (the guard's tests fail loudly if httpx changes this).
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(policy=policy, resolver=resolver, inner=inner),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await super().handle_async_request(request)
        if response.has_redirect_location:
            await response.aclose()
            status = response.status_code
            raise EgressRefused(f"{request.url.host} answered with a redirect ({status})")
        return response


def guarded_client(
    *,
    policy: EgressPolicy,
    timeout: httpx2.Timeout,
    resolver: Resolver = system_resolver,
    inner: httpcore2.AsyncNetworkBackend | None = None,
) -> httpx2.AsyncClient:
    """An HTTP client for destinations someone other than the operator chose."""
    transport = GuardedTransport(policy=policy, resolver=resolver, inner=inner)
    return httpx2.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )


def refusal_in(error: BaseException | None) -> EgressRefused | None:
    """The EgressRefused behind an error (SDKs wrap transport errors), if there is one."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, EgressRefused):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


# --- validating URLs when they are stored -----------------------------------------------


def _valid_hostname(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return 0 < len(name) <= 253 and all(
        re.fullmatch(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", label, re.I) for label in labels
    )


def check_url(url: str, *, policy: EgressPolicy | None = None) -> str:
    """A base URL fit to store: http(s), a valid host, no credentials, no control characters.

    With a policy, a host that is itself a refused address or name is refused now too (the
    connection-time check still decides: names can resolve anywhere later). Returns the URL
    without a trailing slash; raises InvalidURL with one sentence.
    """
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url) or " " in url:
        raise InvalidURL("The URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidURL("The URL is not valid (check the host and port).") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidURL("The URL must start with http:// or https://.")
    if "@" in parts.netloc:
        raise InvalidURL("The URL must not contain a user name or password; use the API key field.")
    host = parts.hostname or ""
    literal = literal_address(host) if host else None
    if not host or (literal is None and not _valid_hostname(host)):
        raise InvalidURL("The URL needs a valid host name or address.")
    if "[" in parts.netloc and not isinstance(literal, ipaddress.IPv6Address):
        raise InvalidURL("The URL's IPv6 address is not valid.")
    if port == 0:
        raise InvalidURL("The URL's port must be between 1 and 65535.")
    if policy is not None:
        try:
            if literal is not None:
                check_destination(host=host, addresses=[literal], policy=policy)
            else:
                _check_name_only(host, policy)
        except EgressRefused:
            raise InvalidURL("This server does not connect to that address.") from None
    return url.rstrip("/")


def _check_name_only(host: str, policy: EgressPolicy) -> None:
    name = _refuse_inside_name(host)
    if policy.allowed_hosts and not policy.allowed_networks and not _name_allowed(name, policy):
        raise EgressRefused(f"{name} is not on the allow-list")
