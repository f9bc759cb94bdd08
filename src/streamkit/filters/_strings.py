"""String operators: equals-ignore-case (and its prefix/suffix forms), wildcard, cidr, and
recognising IP literals, each the way event-ruler (the matcher behind EventBridge) does it."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from streamkit.exceptions import InvalidFilterPatternError

StringTest = Callable[[Any], bool]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# event-ruler's Constants.IPv4_REGEX / IPv6_REGEX: only strings shaped like these are IPs.
_IPV4_SHAPE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6_SHAPE = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")
_JAVA_INT = re.compile(r"[+-]?\d+")


def ip_of(text: str) -> IpAddress | None:
    """The address if ``text`` is an IP literal as event-ruler recognises one, else None."""
    if not (_IPV4_SHAPE.fullmatch(text) or _IPV6_SHAPE.fullmatch(text)):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _case_alternatives(text: str) -> str:
    """A regex for ``text`` with each character replaced by its lower/upper-case forms.

    event-ruler (EqualsIgnoreCaseParser) folds case per Java char: each pattern char matches
    ``toLowerCase(c)`` or ``toUpperCase(c)`` (which may be two chars, e.g. "ß" -> "SS"), and
    chars outside the Basic Multilingual Plane (surrogate pairs in Java) match only themselves.
    """
    parts = []
    for char in text:
        forms = {char} if ord(char) > 0xFFFF else {char.lower(), char.upper()}
        if len(forms) == 1:
            parts.append(re.escape(forms.pop()))
        else:
            parts.append("(?:" + "|".join(re.escape(f) for f in sorted(forms)) + ")")
    return "".join(parts)


def ignore_case_test(text: str, anchor: str) -> StringTest:
    """equals-ignore-case (``anchor="full"``), or its prefix/suffix variants."""
    if text.isascii():
        # Every form of an ASCII char is that ASCII letter in either case, so an event string
        # matches exactly when the compared slice is ASCII and equal after lower().
        folded, size = text.lower(), len(text)
        if anchor == "full":
            return lambda v: (
                isinstance(v, str) and len(v) == size and v.isascii() and v.lower() == folded
            )
        if anchor == "prefix":
            return lambda v: (
                isinstance(v, str)
                and len(v) >= size
                and v[:size].isascii()
                and v[:size].lower() == folded
            )
        if size == 0:
            return lambda v: isinstance(v, str)
        return lambda v: (
            isinstance(v, str)
            and len(v) >= size
            and v[-size:].isascii()
            and v[-size:].lower() == folded
        )
    body = _case_alternatives(text)
    if anchor == "full":
        full = re.compile(body, re.DOTALL).fullmatch
        return lambda v: isinstance(v, str) and full(v) is not None
    if anchor == "prefix":
        start = re.compile(body, re.DOTALL).match
        return lambda v: isinstance(v, str) and start(v) is not None
    end = re.compile(f"(?:{body})\\Z", re.DOTALL).search
    return lambda v: isinstance(v, str) and end(v) is not None


def wildcard_test(text: str, where: str) -> StringTest:
    """``*`` matches any run of characters; ``\\*`` and ``\\\\`` are a literal star and
    backslash. event-ruler (WildcardParser) rejects ``**`` and any other backslash escape."""
    parts, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "*":
            if text.startswith("**", index):
                raise InvalidFilterPatternError(
                    f"{where}: consecutive wildcard characters at position {index}"
                )
            parts.append(".*")
        elif char == "\\":
            if index + 1 >= len(text) or text[index + 1] not in "*\\":
                raise InvalidFilterPatternError(
                    f"{where}: invalid escape character at position {index}"
                )
            index += 1
            parts.append(re.escape(text[index]))
        else:
            parts.append(re.escape(char))
        index += 1
    full = re.compile("".join(parts), re.DOTALL).fullmatch
    return lambda v: isinstance(v, str) and full(v) is not None


def cidr_test(text: str, where: str) -> StringTest:
    """event-ruler's CIDR.cidr: the range runs from the address as written (not masked) to it
    with all host bits set; IPv4 masks are 0-31 and IPv6 masks 0-127."""
    pieces = text.split("/")
    while pieces and pieces[-1] == "":  # Java's String.split drops trailing empty strings
        pieces.pop()
    if len(pieces) != 2 or not _JAVA_INT.fullmatch(pieces[1]):
        raise InvalidFilterPatternError(f"{where}: malformed CIDR {text!r}")
    bits, base = int(pieces[1]), ip_of(pieces[0])
    if base is None or bits < 0 or bits >= base.max_prefixlen:
        raise InvalidFilterPatternError(f"{where}: malformed CIDR {text!r}")
    bottom = int(base)
    top = bottom | ((1 << (base.max_prefixlen - bits)) - 1)
    version = base.version

    def test(value: Any) -> bool:
        address = ip_of(value) if isinstance(value, str) else None
        return address is not None and address.version == version and bottom <= int(address) <= top

    return test
