"""Request authentication for senders that can only send static headers (Directus, Clay).

Fails closed: no header, no configured token or an unreadable secret is a 401. Every active token
is compared in constant time, and all of them are always compared, so timing reveals nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from clay_relay.errors import Unauthorized
from clay_relay.observability import count, logger
from clay_relay.secrets import SecretUnavailable, read_tokens


def presented_token(headers: Mapping[str, str], header: str = "authorization") -> str:
    """The token in `Authorization: Bearer <token>` (the scheme may be omitted)."""
    value = (headers.get(header.lower()) or "").strip()
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        value = rest.strip()
    return value


def token_matches(presented: str, active: tuple[str, ...]) -> bool:
    candidate = presented.encode()
    matched = False
    for token in active:
        matched |= hmac.compare_digest(candidate, token.encode())
    return matched and bool(presented)


def require_token(headers: Mapping[str, str], tokens_secret: str, *, header: str = "authorization") -> None:
    presented = presented_token(headers, header)
    if not presented:
        _reject(f"missing {header} header")
    try:
        active = read_tokens(tokens_secret)
    except SecretUnavailable:
        _reject("authentication is not configured")
    if not token_matches(presented, active):
        _reject("invalid token")


def _reject(reason: str) -> None:
    count("RequestsUnauthorized")
    logger.warning("request rejected", extra={"reason": reason})
    raise Unauthorized(reason)
