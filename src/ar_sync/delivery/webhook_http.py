"""One webhook POST that can only reach a public receiver, and only for so long.

`post_once` resolves the host once, checks every address it got (ar_sync.domain.webhook_urls),
and connects to the address it checked: TLS still verifies the certificate for the host name
(SNI and the Host header carry the name), but no second lookup happens between the check and
the connection, so a DNS answer that changes (rebinding) cannot move the POST inside the
network. Redirects are not followed (http.client never follows them).

`deadline` is a point in time for the whole exchange — connect, TLS handshake, request,
status line and headers — not a per-read timeout: a receiver that drip-feeds one byte every
few seconds would otherwise hold a run for as long as it likes. A watchdog shuts the socket
down at the deadline; each blocking step also gets only the time left. The response body is
never read.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from ar_sync.domain.webhook_urls import (
    IPAddress,
    UnsafeUrlError,
    WebhookUrl,
    check_addresses,
    parse_webhook_url,
)

Resolver = Callable[[str, int], list[IPAddress]]


class DeadlineExceededError(TimeoutError):
    """The receiver did not answer within the notice's total deadline."""


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (A and AAAA), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    seen: dict[IPAddress, None] = {}
    for info in infos:
        seen.setdefault(ipaddress.ip_address(str(info[4][0]).split("%")[0]), None)
    return list(seen)


class _PinnedConnection(http.client.HTTPSConnection):
    """HTTP(S) to one checked address; the host name is used for SNI, the certificate check
    and the Host header. A watchdog can shut the socket down from another thread."""

    def __init__(self, url: WebhookUrl, ip: IPAddress, timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(url.host, url.port, timeout=timeout, context=context)
        self._ip, self._tls = ip, not url.loopback_dev
        self._ssl = context
        self._watch: socket.socket | None = None
        self._lock = threading.Lock()
        self._killed = False

    def connect(self) -> None:
        raw = socket.create_connection((str(self._ip), self.port), self.timeout)
        with self._lock:
            if self._killed:
                raw.close()
                raise DeadlineExceededError("deadline")
            self._watch = raw.dup()  # shutdown() through a dup reaches the same connection
        self.sock = self._ssl.wrap_socket(raw, server_hostname=self.host) if self._tls \
            else raw

    @property
    def killed(self) -> bool:
        return self._killed

    def kill(self) -> None:
        with self._lock:
            self._killed = True
            if self._watch is not None:
                with contextlib.suppress(OSError):
                    self._watch.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        super().close()
        with self._lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None


def post_once(url: WebhookUrl, data: bytes, headers: Mapping[str, str], *, deadline: float,
              allow_loopback: bool = False, resolver: Resolver = resolve,
              context: ssl.SSLContext | None = None,
              clock: Callable[[], float] = time.monotonic) -> int:
    """POST `data`; the receiver's status code. Raises UnsafeUrlError (not allowed),
    DeadlineExceededError or OSError/http.client.HTTPException (no usable answer)."""
    for name, value in headers.items():
        if any(c in name + value for c in "\r\n\0"):
            raise ValueError(f"header {name!r} holds a line break")
    ip = check_addresses(url, resolver(url.host, url.port), allow_loopback=allow_loopback)
    left = deadline - clock()
    if left <= 0:
        raise DeadlineExceededError("deadline")
    connection = _PinnedConnection(url, ip, left, context or ssl.create_default_context())
    watchdog = threading.Timer(left, connection.kill)
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("POST", url.target, body=data,
                           headers={**headers, "Content-Length": str(len(data)),
                                    "Connection": "close"})
        answer = connection.getresponse()
        status = answer.status
        if connection.killed:  # a header cut short by the watchdog parses as complete
            raise DeadlineExceededError("deadline")
    except (OSError, http.client.HTTPException) as exc:
        if connection.killed or clock() >= deadline:
            raise DeadlineExceededError("deadline") from exc
        raise
    finally:
        watchdog.cancel()
        connection.close()
    return int(status)


def unsafe_targets(urls: Iterable[str], *, resolver: Resolver | None = None,
                   allow_loopback: bool = False) -> list[str]:
    """Why each URL may not be stored (the admin API, `rules apply`): the rules schema checked
    its form; this resolves its host and checks the addresses, as a send will again."""
    problems = []
    for url in dict.fromkeys(urls):
        try:
            target = parse_webhook_url(url)
            check_addresses(target, (resolver or resolve)(target.host, target.port),
                            allow_loopback=allow_loopback)
        except UnsafeUrlError as exc:
            problems.append(f"webhook {url[:200]!r}: {exc}")
    return problems


__all__ = ["DeadlineExceededError", "Resolver", "post_once", "resolve", "unsafe_targets"]
