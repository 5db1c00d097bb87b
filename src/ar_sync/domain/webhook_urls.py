"""Which escalation webhook URLs ar-sync may POST to, and which addresses it may connect to.

A webhook URL comes from a rules file, which a business edits (through the admin API on AWS):
a URL that reaches the host's own network would let a tenant probe or call what sits next to
ar-sync — the instance metadata service at 169.254.169.254, the Lambda runtime API on
localhost:9001, a database on 10.x. So a URL is:

* `https://` only, with a host name or a public IP literal; no user:password part (browsers
  and `requests` read `http://localhost@169.254.169.254/` as host 169.254.169.254); no
  fragment; a single-label or numeric host (`intranet`, `2130706433`) is refused;
* `http://127.0.0.1:PORT/...` is the one exception, for a local receiver in tests and
  development: the sender delivers it only when built with `allow_loopback` (the setting
  AR_SYNC_DEV_LOOPBACK_WEBHOOKS=1), and the admin API never accepts it.

An address a host resolves to must be global unicast: not loopback, private (RFC 1918, ULA),
link-local, shared (100.64/10), reserved, multicast or unspecified, checked on the IPv4
address inside an IPv4-mapped, NAT64 (64:ff9b::/96), 6to4 or Teredo IPv6 address too. The
names are resolved by ar_sync.delivery.webhook_http, which connects to the address it
checked (no second lookup a DNS rebinding could answer differently). Pure: no I/O here.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
MAX_URL = 2048
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


class UnsafeUrlError(ValueError):
    """A webhook URL or address ar-sync will not connect to; the message says why."""


@dataclass(frozen=True)
class WebhookUrl:
    """A checked URL: where to connect and what to ask for."""

    scheme: str  # https, or http for the loopback development receiver
    host: str  # lower-case name or IP literal (no brackets)
    port: int
    target: str  # path and query, at least "/"

    @property
    def loopback_dev(self) -> bool:
        return self.scheme == "http"


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why ar-sync must not connect to `ip`, or None for a global unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_v4(ip)) is not None:
        problem = address_problem(inner)
        return f"{problem} (inside {ip})" if problem else None
    for test, what in ((ip.is_unspecified, "unspecified"), (ip.is_loopback, "loopback"),
                       (ip.is_link_local, "link-local (instance metadata lives there)"),
                       (ip.is_multicast, "multicast"), (ip.is_private, "private network"),
                       (ip.is_reserved, "reserved")):
        if test:
            return f"{ip} is a {what} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def _host_problem(host: str) -> str | None:
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return "a local host name"
    labels = host.rstrip(".").split(".")
    spelled = _literal(".".join(labels[:4])) if len(labels) > 4 else None
    if spelled is not None and (problem := address_problem(spelled)):
        return f"a name that spells an internal address: {problem}"  # 127.0.0.1.nip.io
    if len(labels) < 2:
        return "a single-label host name (it resolves through local search domains)"
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        return "a numeric host that is not a plain IP address"
    if not all(_LABEL.match(label) for label in labels):
        return "not a valid host name"
    return None


def parse_webhook_url(url: str) -> WebhookUrl:
    """The checked URL; UnsafeUrlError says what is wrong. Host names are not resolved here."""
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise UnsafeUrlError(f"a webhook URL is text of at most {MAX_URL} characters")
    if any(c.isspace() or not c.isprintable() for c in url) or not url.isascii():
        raise UnsafeUrlError("a webhook URL may not hold spaces, control or non-ASCII "
                             "characters (use Punycode and %-escapes)")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise UnsafeUrlError("the port is not a number from 1 to 65535") from None
    if "@" in parts.netloc:
        raise UnsafeUrlError("a webhook URL may not carry a user or password (user@host)")
    if parts.fragment or "#" in url:
        raise UnsafeUrlError("a webhook URL may not have a #fragment")
    host = (parts.hostname or "").lower()
    if not host:
        raise UnsafeUrlError("a webhook URL needs a host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "http":
        if host != "127.0.0.1":
            raise UnsafeUrlError("a webhook URL must be https:// (http only for a local "
                                 "test receiver at http://127.0.0.1:PORT)")
        return WebhookUrl("http", host, port or 80, target)
    if parts.scheme != "https":
        raise UnsafeUrlError("a webhook URL must be https://")
    ip = _literal(host)
    problem = address_problem(ip) if ip is not None else _host_problem(host)
    if problem:
        raise UnsafeUrlError(f"the host is {problem}" if ip is None else problem)
    return WebhookUrl("https", host, port or 443, target)


def check_addresses(url: WebhookUrl, addresses: list[IPAddress], *,
                    allow_loopback: bool = False) -> IPAddress:
    """The address to connect to, when every address the host resolved to is allowed (one
    bad answer refuses the URL: a name must not mix public and internal addresses)."""
    if not addresses:
        raise UnsafeUrlError(f"{url.host} does not resolve")
    for ip in addresses:
        if allow_loopback and ip.is_loopback:
            continue  # a local test receiver, allowed by an explicit setting
        if url.loopback_dev:
            raise UnsafeUrlError("http://127.0.0.1 receivers are for tests and development "
                                 "only (AR_SYNC_DEV_LOOPBACK_WEBHOOKS=1)")
        if problem := address_problem(ip):
            raise UnsafeUrlError(f"{url.host} resolves to {problem}")
    return addresses[0]


__all__ = ["IPAddress", "UnsafeUrlError", "WebhookUrl", "address_problem", "check_addresses",
           "parse_webhook_url"]
