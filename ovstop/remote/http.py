"""The HTTP(S) client side of ``--connect`` and ``ovstop fleet``: URLs, TLS trust and basic auth.

Credentials never come from the command line alone (a process list shows it to every user): they are read
from a file (``user:password`` on its first line) or from the ``OVSTOP_CONNECT_AUTH`` environment
variable in the same form. Every failure is an :class:`OvstopError` with one line saying what went wrong.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovstop.errors import OvstopError

AUTH_ENV = "OVSTOP_CONNECT_AUTH"


def read_credentials(path: str | None) -> str | None:
    """``user:password`` from ``path`` (first line) or else from $OVSTOP_CONNECT_AUTH; None when neither."""
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise OvstopError(f"--connect-auth-file {path}: {getattr(exc, 'strerror', None) or exc}") from None
        line = text[0].strip() if text else ""
        where = f"--connect-auth-file {path}"
    else:
        line = os.environ.get(AUTH_ENV, "")
        where = f"${AUTH_ENV}"
        if not line:
            return None
    if ":" not in line or not line.partition(":")[0]:
        raise OvstopError(f"{where}: expected user:password on the first line")
    return line


def base_url(text: str, flag: str, strip: tuple[str, ...] = ()) -> str:
    """``text`` checked as an http(s) URL, without a trailing slash or one of the ``strip`` endings."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OvstopError(f"{flag} {text!r}: expected an http:// or https:// URL such as http://host:6103")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise OvstopError(f"{flag} {text!r}: bad port") from None
    path = parts.path.rstrip("/")
    for ending in strip:
        path = path.removesuffix(ending)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass
class HttpClient:
    """GETs JSON from ``base`` (+ a path), trusting ``ca_file`` (else the system's CAs) for https."""

    base: str
    ca_file: str | None = None
    credentials: str | None = None
    timeout: float = 5.0

    def __post_init__(self) -> None:
        self._context: ssl.SSLContext | None = None
        if self.base.startswith("https:"):
            try:
                self._context = ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise OvstopError(f"--connect-ca {self.ca_file}: {getattr(exc, 'strerror', None) or exc}") from None
        elif self.ca_file:
            raise OvstopError(f"--connect-ca given for a plain http:// URL ({self.base})")
        self._headers = {"Accept": "application/json"}
        if self.credentials:
            self._headers["Authorization"] = "Basic " + base64.b64encode(self.credentials.encode()).decode()

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.base).netloc

    def get_json(self, path: str, query: dict[str, str] | None = None) -> Any:
        """The decoded JSON answer to GET ``base + path``; an OvstopError naming the cause otherwise."""
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(url, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._context) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            hint = " (check the credentials)" if exc.code == 401 else ""
            raise OvstopError(f"{self.host}: HTTP {exc.code} {exc.reason}{hint}") from None
        except urllib.error.URLError as exc:
            raise OvstopError(f"{self.host}: {getattr(exc.reason, 'strerror', None) or exc.reason}") from None
        except (OSError, ValueError) as exc:  # timeouts, resets mid-body, bad TLS
            raise OvstopError(f"{self.host}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            return json.loads(body)
        except ValueError:
            raise OvstopError(f"{self.host}: the answer to {path} is not JSON") from None
