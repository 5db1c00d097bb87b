"""E-mail addresses ar-sync will put on a message: one plain RFC 5322 addr-spec, ASCII only.

Addresses come from platforms (a customer's BillEmail, a Xero contact), from rules files and
from the CLI; any of them may be hostile. Python's e-mail package is lenient on purpose: it
decodes RFC 2047 encoded words even inside an addr-spec, so
`=?utf-8?q?attacker=40evil.example=2C_ap?=@client.example` goes out as
`To: attacker@evil.example, ap@client.example` (two recipients). RFC 2047 section 5 says an
encoded word MUST NOT appear in any part of an addr-spec, so we refuse it, and with it
everything else that is not a dot-atom local part at a host name:

* local part: RFC 5322 `dot-atom` (atext and single dots), no quoted strings, no `=?`;
* domain: LDH labels of 1-63 characters, at least two, a top-level label that is not all
  digits (no address literals such as `[127.0.0.1]`), at most 253 characters;
* ASCII only: SES does not support SMTPUTF8 (RFC 6531), so a non-ASCII local part cannot be
  sent, and an internationalised domain must be given in Punycode (`xn--`);
* at most 254 characters in all (RFC 5321 section 4.5.3.1.3 with its path limit).

A From header may carry a display name; `mailbox()` allows printable ASCII there, without
the characters that would start another address or header.
"""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"^{_ATEXT}(?:\.{_ATEXT})*$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_DISPLAY = re.compile(r"^[A-Za-z0-9 !#$%&'*+/=?^_`{|}~.-]*$")  # no <>@:;,()"\ CR LF
MAX_ADDRESS = 254
MAX_LOCAL = 64
MAX_DOMAIN = 253


def address_problem(address: str) -> str | None:
    """Why `address` is not one plain addr-spec we can send to, or None when it is."""
    if not isinstance(address, str) or not address:
        return "empty"
    if not address.isascii():
        return "non-ASCII characters (SES and most servers need a 7-bit address)"
    if len(address) > MAX_ADDRESS:
        return f"longer than {MAX_ADDRESS} characters"
    if "=?" in address:
        return "an RFC 2047 encoded word is not allowed in an address"
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return "not of the form name@domain"
    if len(local) > MAX_LOCAL or not _LOCAL.match(local):
        return "the part before @ must be letters, digits and !#$%&'*+/=?^_`{|}~- with single dots"
    return domain_problem(domain)


def domain_problem(domain: str) -> str | None:
    """Why `domain` is not a host name an address can be at, or None when it is."""
    if len(domain) > MAX_DOMAIN:
        return f"domain longer than {MAX_DOMAIN} characters"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return "the domain must be dot-separated names of letters, digits and '-'"
    if labels[-1].isdigit():
        return "the domain must be a name, not an IP address"
    return None


def valid_address(address: str) -> bool:
    """True for one plain addr-spec (see the module's rules)."""
    return address_problem(address) is None


def mailbox(value: str) -> tuple[str, str]:
    """(display name, address) of `Name <addr>` or a bare `addr`; ValueError when it is
    anything else (two addresses, encoded words, CR/LF, quotes, a group)."""
    text = value.strip()
    name, address = "", text
    if text.endswith(">") and "<" in text:
        name, _, address = text[:-1].rpartition("<")
        name = name.strip()
        if not _DISPLAY.match(name) or "=?" in name:
            raise ValueError(f"the display name in {value!r} may hold only printable ASCII "
                             "without <>@:;,()\"\\ or encoded words")
    problem = address_problem(address)
    if problem:
        raise ValueError(f"not a usable address {value!r}: {problem}")
    return name, address


__all__ = ["address_problem", "domain_problem", "mailbox", "valid_address"]
