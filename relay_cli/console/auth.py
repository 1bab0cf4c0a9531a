"""Who may use the console: whoever holds the token it printed when it started.

- The token is random per start (32 bytes). The first request carries it in the URL
  (`/?token=…`); the answer sets it as a cookie (HttpOnly, SameSite=Strict, Path=/) and redirects
  to the same page without it, so it leaves the address bar and the history. Every later request
  needs the cookie (or the token again): without it, 401.
- The Host header must name this console (127.0.0.1 or localhost, with its port): a web page whose
  host name is made to resolve to 127.0.0.1 (DNS rebinding) is refused.
- A request that changes something (replay) must be a POST with the CSRF token of this start in its
  form, and, when the browser sends an Origin, come from this console's origin. SameSite=Strict
  already keeps another site's form from carrying the cookie; the CSRF token is the second lock.
Comparisons are constant-time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie

COOKIE = "relay_console"
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


@dataclass
class Guard:
    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def origins(self) -> set[str]:
        return {f"http://{name}:{self.port}" for name in LOOPBACK_NAMES}

    def host_refusal(self, host: str | None) -> Refusal | None:
        """The Host header must be this console's own (not a name that resolves here by a trick)."""
        if host not in {f"{name}:{self.port}" for name in LOOPBACK_NAMES}:
            return Refusal(421, f"this console answers only to http://127.0.0.1:{self.port}")
        return None

    def holds_token(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given).encode(), self.token.encode())

    def cookie_token(self, cookie_header: str | None) -> str | None:
        if not cookie_header:
            return None
        try:
            morsel = SimpleCookie(cookie_header).get(COOKIE)
        except CookieError:
            return None
        return morsel.value if morsel else None

    def signed_in(self, cookie_header: str | None) -> bool:
        return self.holds_token(self.cookie_token(cookie_header))

    def set_cookie(self) -> str:
        return f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"

    def change_refusal(self, method: str, origin: str | None, form_csrf: str | None) -> Refusal | None:
        """What keeps a state-changing request from being made by anyone but this console's pages."""
        if method != "POST":
            return Refusal(405, "this changes something: send it as a POST from the console's own form")
        if origin is not None and origin not in self.origins:
            return Refusal(403, "cross-origin request refused")
        if not (form_csrf and hmac.compare_digest(form_csrf.encode(), self.csrf.encode())):
            return Refusal(403, "missing or wrong CSRF token: reload the page and try again")
        return None
