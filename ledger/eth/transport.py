"""JSON-RPC over HTTP with one kept-alive `http.client` connection per thread.

web3's `HTTPProvider` posts each request through `requests`, whose session machinery
(adapters, hooks, cookie jar, header merging) costs about 0.5 ms of CPU per request
against 0.1 ms for the same POST on a kept-alive `http.client` connection
(bench/chain_calls.py): most of what a contract read costs a node. `Transport` keeps
web3's provider (its request encoding, caching and retries) and replaces only the POST.
It fails as `requests` fails (`requests.ConnectionError`, `requests.Timeout`,
`requests.HTTPError`), so every caller's error handling is unchanged; a URL that a proxy
from the environment applies to is posted by `requests`, which honours it.
"""

from __future__ import annotations

import base64
import http.client
import select
import threading
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
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
        parts = urlsplit(url)
        self.url, self.timeout = url, timeout
        self._url = requests.Request("POST", url).prepare().url or url  # as requests names it
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers = dict(_HEADERS)
        if parts.username is not None:  # https://user:secret@host, as requests sends it
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(userinfo.encode()).decode(
                "ascii"
            )
        self._proxied = _proxied(url)
        self._local = threading.local()

    def make_post_request(self, endpoint_uri: Any, data: Any, **kwargs: Any) -> bytes:
        if self._proxied or endpoint_uri != self.url or not isinstance(data, bytes):
            return super().make_post_request(endpoint_uri, data, **kwargs)
        timeout = kwargs.get("timeout") or self.timeout
        headers = kwargs.get("headers")
        headers = self._headers if headers is None else {**headers, **self._headers}
        conn = self._connection(timeout)
        try:
            conn.request("POST", self._path, data, headers)
            response = conn.getresponse()
            body = response.read()
        except TimeoutError as exc:
            self._drop()
            raise requests.ReadTimeout(f"{self.url}: no answer in {timeout} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise requests.ConnectionError(f"{self.url}: {exc!r}") from exc
        if response.will_close:
            self._drop()
        if not 200 <= response.status < 300:
            _as_requests_response(response, body, self._url).raise_for_status()
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
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = self._local.conn = kind(self._host, self._port, timeout=timeout)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether the server closed an idle kept-alive connection (its socket reads as ready
    with nothing asked), as urllib3 checks before it reuses one."""
    sock = conn.sock
    if sock is None:
        return False  # not connected yet: http.client connects on the request
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


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
