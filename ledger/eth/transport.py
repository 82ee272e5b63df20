"""JSON-RPC over HTTP with one kept-alive `http.client` connection per thread.

web3's `HTTPProvider` posts each request through `requests`, whose session machinery
(adapters, hooks, cookie jar, header merging) costs about 0.5 ms of CPU per request
against 0.1 ms for the same POST on a kept-alive `http.client` connection: most of what
a contract read cost a node (bench/chain_calls.py). `Transport` keeps web3's provider
(its request encoding, caching and retries) and replaces only the POST, doing what
`requests` does with it: the same URL (percent-encoded, IPv6 hosts), credentials from the
URL, the same certificate authorities (`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`, else
certifi's), gzip and deflate answers, and the same exceptions (`requests.ConnectionError`,
`requests.Timeout`, `requests.HTTPError`), so every caller's error handling is unchanged.
What it would do differently is left to `requests` itself: an endpoint a proxy from the
environment applies to, or with credentials in `~/.netrc`, and any redirect.
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
import urllib.request
import zlib
from typing import Any
from urllib.parse import unquote, urlsplit

import certifi
import requests
from requests.auth import _basic_auth_str
from requests.utils import get_netrc_auth
from urllib3.util.wait import wait_for_read
from web3 import HTTPProvider
from web3._utils.http_session_manager import HTTPSessionManager

_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def http_provider(url: str, timeout: float, **options: Any) -> HTTPProvider:
    """web3's HTTPProvider for `url` (`options` as it takes them), posting through a
    `Transport`."""
    provider = HTTPProvider(url, request_kwargs={"timeout": timeout}, **options)
    provider._request_session_manager = Transport(url, timeout)
    return provider


class Transport(HTTPSessionManager):
    """web3's session manager for one endpoint, posting on kept-alive connections."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__()
        self.url, self.timeout = url, timeout
        prepared = urlsplit(requests.Request("POST", url).prepare().url or url)
        self._https = prepared.scheme == "https"
        self._host = prepared.hostname or ""
        self._port = prepared.port or (443 if self._https else 80)
        self._path = (prepared.path or "/") + (f"?{prepared.query}" if prepared.query else "")
        host = prepared.netloc.rpartition("@")[2]
        self._shown = prepared._replace(netloc=host).geturl()  # the URL without a secret
        self._headers = dict(_HEADERS)
        self._defer = _proxied(url)  # what requests would do otherwise: let it
        if prepared.username is not None:  # https://user:secret@host, as requests sends it
            try:
                user, password = unquote(prepared.username), unquote(prepared.password or "")
                self._headers["Authorization"] = _basic_auth_str(user, password)
            except UnicodeEncodeError:
                self._defer = True
        elif get_netrc_auth(url) is not None:
            self._defer = True
        self._tls = _tls_context() if self._https and not self._defer else None
        self._local = threading.local()

    def make_post_request(self, endpoint_uri: Any, data: Any, **kwargs: Any) -> bytes:
        if self._defer or endpoint_uri != self.url or not isinstance(data, bytes):
            return super().make_post_request(endpoint_uri, data, **kwargs)
        timeout = kwargs.get("timeout") or self.timeout
        headers = kwargs.get("headers")
        headers = self._headers if headers is None else {**headers, **self._headers}
        conn = self._connection(timeout)
        connecting = conn.sock is None
        try:
            conn.request("POST", self._path, data, headers)
            response = conn.getresponse()
            body = response.read()
        except TimeoutError as exc:
            self._drop()
            kind = requests.ConnectTimeout if connecting and conn.sock is None else None
            raise (kind or requests.ReadTimeout)(
                f"{self._shown}: no answer in {timeout} s"
            ) from exc
        except http.client.IncompleteRead as exc:
            self._drop()
            raise requests.exceptions.ChunkedEncodingError(
                f"{self._shown}: the answer was cut short"
            ) from exc
        except ssl.SSLError as exc:  # a certificate not trusted, a TLS failure
            self._drop()
            raise requests.exceptions.SSLError(f"{self._shown}: {exc!r}") from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise requests.ConnectionError(f"{self._shown}: {exc!r}") from exc
        if response.will_close:
            self._drop()
        if 300 <= response.status < 400:  # a redirect: followed as requests follows it
            self._drop()
            return super().make_post_request(endpoint_uri, data, **kwargs)
        encoding = (response.getheader("Content-Encoding") or "").strip().lower()
        if encoding in ("gzip", "deflate"):
            try:
                body = zlib.decompress(body, 47 if encoding == "gzip" else zlib.MAX_WBITS)
            except zlib.error as exc:
                raise requests.exceptions.ContentDecodingError(
                    f"{self._shown}: the {encoding} answer does not decompress"
                ) from exc
        if not 200 <= response.status < 300:
            _as_requests_response(response, body, self._shown).raise_for_status()
        return body

    def close(self) -> None:
        """Close this thread's connection (other threads' close as their threads end)."""
        self._drop()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and (conn.timeout != timeout or _dropped(conn)):
            self._drop()
            conn = None
        if conn is None:
            if self._tls is not None:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=self._tls
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether the server closed an idle kept-alive connection (its socket reads as ready
    with nothing asked), checked as urllib3 checks before it reuses one."""
    sock = conn.sock
    if sock is None:
        return False  # not connected yet: http.client connects on the request
    try:
        return bool(wait_for_read(sock, timeout=0.0))
    except (OSError, ValueError):
        return True


def _tls_context() -> ssl.SSLContext:
    """The certificate authorities requests trusts: $REQUESTS_CA_BUNDLE or
    $CURL_CA_BUNDLE (a file or a directory), else certifi's bundle."""
    where = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if where and os.path.isdir(where):
        return ssl.create_default_context(capath=where)
    return ssl.create_default_context(cafile=where or certifi.where())


def _proxied(url: str) -> bool:
    """Whether a proxy from the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) applies."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if parts.scheme not in proxies and "all" not in proxies:
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


def _as_requests_response(
    response: http.client.HTTPResponse, body: bytes, url: str
) -> requests.Response:
    """The answer as `requests` would hold it: its `raise_for_status` raises the HTTPError
    requests raises."""
    out = requests.Response()
    out.status_code, out.reason, out.url = response.status, response.reason, url
    out._content = body
    out.headers.update(response.getheaders())
    return out
