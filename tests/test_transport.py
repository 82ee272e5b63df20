"""The node's JSON-RPC transport answers and fails exactly as web3's own HTTPProvider does
(differential, against a real anvil and against servers that misbehave on purpose)."""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_utils import keccak
from web3 import HTTPProvider

from ledger.eth.devnet import Devnet
from ledger.eth.toolchain import free_port
from ledger.eth.transport import Transport, _proxied, http_provider

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state: Path = tmp_path_factory.mktemp("anvil")
    with Devnet(state_dir=state, port=free_port()) as chain:
        yield chain.url


def both(url: str, timeout: float = TIMEOUT) -> tuple[HTTPProvider, HTTPProvider]:
    """web3's provider as shipped (requests), and the node's."""
    return HTTPProvider(url, request_kwargs={"timeout": timeout}), http_provider(url, timeout)


def answer(provider: HTTPProvider, method: str, params: Any) -> Any:
    """The JSON-RPC answer without its id (each provider counts its own)."""
    out = dict(provider.make_request(method, params))  # type: ignore[arg-type]
    out.pop("id", None)
    return out


REVERTS = "0x60006000fd"  # init code that reverts at once: PUSH1 0, PUSH1 0, REVERT


def test_every_answer_is_the_one_web3s_provider_gets(anvil: str) -> None:
    ours, theirs = both(anvil)[1], both(anvil)[0]
    dev = answer(theirs, "eth_accounts", [])["result"][0]
    calls: list[tuple[str, Any]] = [
        ("eth_chainId", []),
        ("eth_blockNumber", []),
        ("eth_getBlockByNumber", ["0x0", False]),
        ("eth_getBalance", [dev, "latest"]),
        ("eth_call", [{"to": "0x" + "11" * 20, "data": "0x"}, "latest"]),
        ("eth_call", [{"data": REVERTS}, "latest"]),  # a revert: an error with its data
        ("eth_estimateGas", [{"from": dev, "data": REVERTS}]),
        ("eth_getTransactionReceipt", ["0x" + "00" * 32]),  # none: a null result
        ("eth_noSuchMethod", []),  # a JSON-RPC error
        ("eth_getBalance", ["not an address", "latest"]),  # invalid params
    ]
    for method, params in calls:
        mine = answer(ours, method, params)
        assert mine == answer(theirs, method, params), method
    assert "error" in answer(ours, "eth_call", [{"data": REVERTS}, "latest"])
    batch = [("eth_chainId", []), ("eth_blockNumber", [])]
    assert [dict(r, id=0) for r in ours.make_batch_request(batch)] == [  # type: ignore[arg-type, union-attr]
        dict(r, id=0)
        for r in theirs.make_batch_request(batch)  # type: ignore[arg-type, union-attr]
    ]


def test_threads_each_keep_a_connection_and_get_their_own_answers(anvil: str) -> None:
    provider = http_provider(anvil, TIMEOUT)
    inputs = ["0x" + bytes([n]).hex() for n in range(16)]

    def ask(data: str) -> list[Any]:
        return [answer(provider, "web3_sha3", [data])["result"] for _ in range(25)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(ask, inputs))
    for data, got in zip(inputs, results, strict=True):
        assert got == ["0x" + keccak(hexstr=data).hex()] * 25


@contextmanager
def server(
    handle: Callable[[BaseHTTPRequestHandler, bytes], None], tls: Any = None
) -> Iterator[str]:
    """An HTTP/1.1 server on 127.0.0.1 that answers every POST with `handle` (over TLS
    when given a server-side `ssl.SSLContext`)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            handle(self, self.rfile.read(int(self.headers["Content-Length"])))

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, close: bool = False) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
    handler.close_connection = close  # closed without saying so in a header


def result(handler: BaseHTTPRequestHandler, request: bytes, close: bool = False) -> None:
    asked = json.loads(request)
    body = json.dumps({"jsonrpc": "2.0", "id": asked["id"], "result": "0x1"}).encode()
    reply(handler, 200, body, close)


def failure(provider: HTTPProvider, method: str = "cofab_ping") -> BaseException:
    """What a request raises (of a method web3 does not retry: one attempt each)."""
    with pytest.raises(requests.RequestException) as caught:
        provider.make_request(method, ["0x00"])  # type: ignore[arg-type]
    return caught.value


def test_no_server_fails_as_requests_fails() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for provider in both(url):
        assert isinstance(failure(provider), requests.ConnectionError)


def test_an_http_error_status_fails_as_requests_fails() -> None:
    body = b'{"error": "overloaded"}'
    with server(lambda h, _r: reply(h, 503, body)) as url:
        for provider in both(url):
            error = failure(provider)
            assert isinstance(error, requests.HTTPError)
            assert error.response is not None
            assert (error.response.status_code, error.response.content) == (503, body)
            assert str(error) == f"503 Server Error: Service Unavailable for url: {url}/"


def test_a_server_that_does_not_answer_in_time_fails_as_requests_fails() -> None:
    with server(lambda h, r: (time.sleep(0.6), result(h, r))) as url:
        for provider in both(url, timeout=0.2):
            assert isinstance(failure(provider), requests.Timeout)


def test_an_answer_that_came_too_late_is_never_taken_for_the_next_one() -> None:
    asked: list[int] = []

    def late_once(handler: BaseHTTPRequestHandler, request: bytes) -> None:
        asked.append(json.loads(request)["id"])
        if len(asked) == 1:
            time.sleep(0.6)
        result(handler, request)

    with server(late_once) as url:
        transport = Transport(url, 0.2)
        first = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "cofab_ping"}).encode()
        with pytest.raises(requests.Timeout):
            transport.make_post_request(url, first)
        time.sleep(0.6)  # the first answer has arrived on the connection given up on
        second = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "cofab_ping"}).encode()
        assert json.loads(transport.make_post_request(url, second))["id"] == 2


def test_a_connection_the_server_closed_is_opened_again() -> None:
    seen: list[int] = []  # the client's port: one per connection

    def once_per_connection(handler: BaseHTTPRequestHandler, request: bytes) -> None:
        seen.append(handler.client_address[1])
        result(handler, request, close=True)

    with server(once_per_connection) as url:
        provider = http_provider(url, TIMEOUT)
        for _ in range(5):
            assert answer(provider, "eth_sendRawTransaction", ["0x00"])["result"] == "0x1"
            time.sleep(0.05)  # the server has closed its side meanwhile
    assert len(set(seen)) == 5


def test_credentials_in_the_url_are_sent_as_requests_sends_them() -> None:
    headers: list[str | None] = []

    def record(handler: BaseHTTPRequestHandler, request: bytes) -> None:
        headers.append(handler.headers.get("Authorization"))
        result(handler, request)

    with server(record) as url:
        secret = url.replace("http://", "http://member%401:s%3Acret@") + "/rpc?key=k"
        for provider in both(secret):
            answer(provider, "eth_chainId", [])
    assert headers[0] is not None and headers == [headers[0]] * 2


def test_a_proxy_from_the_environment_is_left_to_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert _proxied("https://rpc.consortium.example")
    assert not _proxied("https://127.0.0.1:8545")
    assert not _proxied("http://rpc.consortium.example")  # HTTPS_PROXY only


def test_a_failure_names_the_endpoint_without_its_credentials() -> None:
    url = f"http://member:s3cret@127.0.0.1:{free_port()}/rpc"
    error = failure(http_provider(url, TIMEOUT))
    assert isinstance(error, requests.ConnectionError)
    assert "s3cret" not in str(error) and "127.0.0.1" in str(error)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_followed_as_requests_follows_it(status: int) -> None:
    with server(result) as target:

        def moved(handler: BaseHTTPRequestHandler, _request: bytes) -> None:
            handler.send_response(status)
            handler.send_header("Location", target + "/rpc")
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        with server(moved) as url:
            outcomes = []
            for provider in both(url):
                try:
                    outcomes.append(("ok", answer(provider, "cofab_ping", [])))
                except requests.RequestException as exc:  # 301/302: requests turns it into GET
                    outcomes.append(("refused", type(exc)))
            assert outcomes[0] == outcomes[1]
            if status in (307, 308):
                assert outcomes[0] == ("ok", {"jsonrpc": "2.0", "result": "0x1"})


def test_a_path_needing_escapes_and_an_ipv6_host_are_read_as_requests_reads_them() -> None:
    paths: list[str] = []

    def record(handler: BaseHTTPRequestHandler, request: bytes) -> None:
        paths.append(handler.path)
        result(handler, request)

    with server(record) as url:
        for provider in both(url + "/json rpc/ü?key=a b"):
            assert answer(provider, "cofab_ping", [])["result"] == "0x1"
    assert paths[0] == paths[1] == "/json%20rpc/%C3%BC?key=a%20b"
    transport = Transport("http://[::1]/rpc", TIMEOUT)
    assert (transport._host, transport._port) == ("::1", 80)


def test_a_connection_is_kept_whatever_its_file_descriptor_number() -> None:
    """select() cannot watch descriptors above 1023; the staleness check must."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    ports: list[int] = []

    def record(handler: BaseHTTPRequestHandler, request: bytes) -> None:
        ports.append(handler.client_address[1])
        result(handler, request)

    try:
        with server(record) as url:
            provider = http_provider(url, TIMEOUT)
            for _ in range(10):
                answer(provider, "cofab_ping", [])
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len(set(ports)) == 1


def test_https_trusts_the_authorities_requests_trusts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "consortium rpc")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "consortium-ca.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pem, key_file)
    with server(result, tls) as url:
        for trusted in (False, True):  # certifi's authorities, then the consortium's
            if trusted:
                monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pem))
            outcomes = []
            for provider in both(url):
                try:
                    outcomes.append(answer(provider, "cofab_ping", [])["result"])
                except requests.exceptions.SSLError:
                    outcomes.append("untrusted")
            assert outcomes == (["0x1", "0x1"] if trusted else ["untrusted", "untrusted"])


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_answer_is_read_as_requests_reads_it(encoding: str) -> None:
    def compressed(handler: BaseHTTPRequestHandler, request: bytes) -> None:
        asked = json.loads(request)
        body = json.dumps({"jsonrpc": "2.0", "id": asked["id"], "result": "0x2"}).encode()
        packer = zlib.compressobj(wbits=31 if encoding == "gzip" else 15)
        packed = packer.compress(body) + packer.flush()
        handler.send_response(200)
        handler.send_header("Content-Encoding", encoding)
        handler.send_header("Content-Length", str(len(packed)))
        handler.end_headers()
        handler.wfile.write(packed)

    with server(compressed) as url:
        for provider in both(url):
            assert answer(provider, "cofab_ping", [])["result"] == "0x2"
