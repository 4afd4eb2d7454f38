"""The egress guard: every spelling of a local address refused at connection time, the
checked address is the one connected to, redirects refused, proxies from the environment
ignored; and URLs validated when stored."""

import ipaddress
from collections.abc import Iterator

import httpcore2
import httpx2
import pytest
from egress_sink import Sink, start_sink

from backend.core.egress import (
    EgressPolicy,
    EgressRefused,
    InvalidURL,
    address_problem,
    check_url,
    guarded_client,
    literal_address,
    parse_policy,
)

TIMEOUT = httpx2.Timeout(5.0)
PUBLIC = ipaddress.ip_address("93.184.215.14")


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    server = start_sink()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh_sink(sink: Sink) -> None:
    sink.requests.clear()
    sink.redirect_to = None


LOCAL_FORMS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0x7F.0.0.1",
    "0177.0.0.1",
    "0177.0.0.01",
    "0.0.0.0",
    "0",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::]",
    "localhost",
    "LOCALHOST.",
    "anything.localhost",
    "user:pw@127.0.0.1",
]
INSIDE_FORMS = [
    "169.254.169.254",
    "[fe80::1]",
    "[fd00::2]",
    "metadata.google.internal",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
]


@pytest.mark.parametrize("host", LOCAL_FORMS + INSIDE_FORMS)
async def test_every_local_and_inside_form_is_refused_at_connection_time(
    sink: Sink, host: str
) -> None:
    # httpx itself refuses a dotted address with a 4-digit octal part before any connection.
    refusal = httpx2.InvalidURL if host.startswith("0177.") else EgressRefused
    async with guarded_client(policy=EgressPolicy(), timeout=TIMEOUT) as client:
        with pytest.raises(refusal):
            await client.post(f"http://{host}:{sink.port}/v1/chat/completions", json={"x": 1})
    assert sink.requests == []


async def test_the_machines_own_name_is_refused_by_its_address(sink: Sink) -> None:
    """A name the store-time check cannot judge (it resolves to loopback here)."""
    import socket

    name = socket.gethostname()
    resolved = {info[4][0] for info in socket.getaddrinfo(name, None)}
    assert any(ipaddress.ip_address(a).is_loopback for a in resolved), resolved  # precondition
    check_url(f"http://{name}:{sink.port}/v1", policy=EgressPolicy())  # a name: accepted now
    async with guarded_client(policy=EgressPolicy(), timeout=TIMEOUT) as client:
        with pytest.raises(EgressRefused, match="loopback"):
            await client.get(f"http://{name}:{sink.port}/v1/models")
    assert sink.requests == []


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("example.com", None),
        ("1.2.3.4.example", None),
        ("0x7g000001", None),
    ],
)
def test_literal_addresses_are_read_as_the_resolver_reads_them(
    host: str, expected: str | None
) -> None:
    found = literal_address(host)
    assert (str(found) if found else None) == expected


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


class Recorder(httpcore2.AsyncNetworkBackend):
    """The guard's inner backend in tests: records where it was asked to connect, and fails
    as an unreachable address would (nothing leaves the machine)."""

    def __init__(self) -> None:
        self.connected_to: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, **_: object) -> httpcore2.AsyncNetworkStream:
        self.connected_to.append((host, port))
        raise httpcore2.ConnectError("unreachable in tests")

    async def sleep(self, seconds: float) -> None:
        pass


async def test_dns_rebinding_cannot_swap_the_address_between_check_and_connect(
    sink: Sink,
) -> None:
    answers = [[PUBLIC], [ipaddress.ip_address("127.0.0.1")]]
    asked: list[str] = []

    async def rebinding_resolver(host: str, port: int) -> list:
        asked.append(host)
        return answers.pop(0)

    recorder = Recorder()
    async with guarded_client(
        policy=EgressPolicy(), timeout=TIMEOUT, resolver=rebinding_resolver, inner=recorder
    ) as client:
        with pytest.raises(httpx2.ConnectError) as first:
            await client.get(f"http://rebind.example:{sink.port}/v1/models")
        assert not isinstance(first.value, EgressRefused)
        # The socket was opened to the address that was checked, not to the name again.
        assert recorder.connected_to == [(str(PUBLIC), sink.port)]
        with pytest.raises(EgressRefused, match="loopback"):
            await client.get(f"http://rebind.example:{sink.port}/v1/models")
    assert asked == ["rebind.example", "rebind.example"]
    assert recorder.connected_to == [(str(PUBLIC), sink.port)]
    assert sink.requests == []


async def test_a_name_with_any_inside_address_is_refused(sink: Sink) -> None:
    async def mixed(host: str, port: int) -> list:
        return [PUBLIC, ipaddress.ip_address("::1")]

    recorder = Recorder()
    async with guarded_client(
        policy=EgressPolicy(), timeout=TIMEOUT, resolver=mixed, inner=recorder
    ) as client:
        with pytest.raises(EgressRefused):
            await client.get("http://mixed.example/v1/models")
    assert recorder.connected_to == []


async def test_redirects_are_refused(sink: Sink) -> None:
    """Even to a destination the policy would allow: the first hop is exempt here, the
    redirect points at the metadata address, and no second request is made."""
    sink.redirect_to = "http://169.254.169.254/latest/meta-data/"
    policy = parse_policy(allow_list=(), private_exemptions=["127.0.0.0/8"])
    async with guarded_client(policy=policy, timeout=TIMEOUT) as client:
        with pytest.raises(EgressRefused, match="redirect"):
            await client.get(f"http://127.0.0.1:{sink.port}/v1/models")
    assert len(sink.requests) == 1  # the first hop only


async def test_redirect_to_the_sink_itself_is_refused(sink: Sink) -> None:
    sink.redirect_to = f"http://127.0.0.1:{sink.port}/again"
    policy = parse_policy(allow_list=(), private_exemptions=["127.0.0.0/8"])
    async with guarded_client(policy=policy, timeout=TIMEOUT) as client:
        with pytest.raises(EgressRefused):
            await client.get(f"http://127.0.0.1:{sink.port}/v1/models")
    assert [request["path"] for request in sink.requests] == ["/v1/models"]


async def test_proxies_from_the_environment_are_not_used(
    sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would resolve the name itself, behind the guard's back."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{sink.port}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{sink.port}")

    async def public(host: str, port: int) -> list:
        return [PUBLIC]

    recorder = Recorder()
    async with guarded_client(
        policy=EgressPolicy(), timeout=TIMEOUT, resolver=public, inner=recorder
    ) as client:
        with pytest.raises(httpx2.ConnectError):
            await client.get("http://api.example.com/v1/models")
    assert recorder.connected_to == [(str(PUBLIC), 80)]
    assert sink.requests == []


async def test_the_allow_list_admits_only_its_hosts_and_networks() -> None:
    async def public(host: str, port: int) -> list:
        return [PUBLIC]

    policy = parse_policy(allow_list=["*.example.com", "api.other.org", "203.0.113.0/24"])
    recorder = Recorder()
    async with guarded_client(
        policy=policy, timeout=TIMEOUT, resolver=public, inner=recorder
    ) as client:
        for url in ("https://llm.example.com/v1", "https://example.com/v1", "http://api.other.org"):
            with pytest.raises(httpx2.ConnectError) as caught:
                await client.get(url)
            assert not isinstance(caught.value, EgressRefused), url
        for url in ("https://example.org/v1", "https://badexample.com/v1", "http://8.8.8.8/"):
            with pytest.raises(EgressRefused, match="allow-list"):
                await client.get(url)
    assert [host for host, _ in recorder.connected_to] == [str(PUBLIC)] * 3


def test_the_allow_list_never_admits_private_addresses() -> None:
    policy = parse_policy(allow_list=["10.0.0.0/8", "intranet.example"])
    with pytest.raises(InvalidURL):
        check_url("http://10.1.2.3/v1", policy=policy)


def test_bad_allow_list_entries_are_named() -> None:
    with pytest.raises(ValueError, match="neither a host name nor a network"):
        parse_policy(allow_list=["http://x/"])


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        ("ftp://example.com", "http:// or https://"),
        ("not a url", "spaces or control"),
        ("https://example.com\r\nX-Injected: 1", "control characters"),
        ("https://exa\tmple.com", "control characters"),
        ("https://user:pw@example.com/v1", "user name or password"),
        ("https://@example.com/v1", "user name or password"),
        ("http://[::1/v1", "not valid"),
        ("http://[fe80::zz]/v1", "not valid"),
        ("http://[example.com]/v1", "not valid"),
        ("http://exa_mple..com/", "valid host"),
        ("http:///v1", "valid host"),
        ("http://example.com:0/", "port"),
        ("http://example.com:70000/", "not valid"),
    ],
)
def test_urls_are_validated_when_stored(url: str, sentence: str) -> None:
    with pytest.raises(InvalidURL, match=sentence):
        check_url(url)


@pytest.mark.parametrize("host", [h for h in LOCAL_FORMS + INSIDE_FORMS if "@" not in h])
def test_refused_hosts_are_refused_when_stored_too(host: str) -> None:
    with pytest.raises(InvalidURL, match="does not connect to that address"):
        check_url(f"http://{host}:8000/v1", policy=EgressPolicy())


def test_good_urls_are_kept_without_the_trailing_slash() -> None:
    assert check_url("https://api.openai.com/v1/") == "https://api.openai.com/v1"
    assert check_url("http://[2606:4700::1111]:8080/v1", policy=EgressPolicy())
