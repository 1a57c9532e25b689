"""``--web.config.file``: TLS and basic auth in the format of Prometheus's exporter-toolkit.

The same YAML file node_exporter takes works here::

    tls_server_config:
      cert_file: /etc/ovstop/tls.crt
      key_file: /etc/ovstop/tls.key
      client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
      client_ca_file: /etc/ovstop/clients.pem
      min_version: TLS12                             # optional: TLS12 (default) or TLS13
    basic_auth_users:
      prometheus: $2y$10$...                         # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')

Unknown keys are refused, as exporter-toolkit refuses them: a typo must not silently turn TLS or auth off.
The layer is the HTTP server's, so every endpoint it serves is behind it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovstop.errors import OvstopError

TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version"}
TOP_KEYS = {"tls_server_config", "basic_auth_users"}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# bcrypt is slow on purpose (tens of ms per check); remember the credentials that passed, as
# exporter-toolkit does, so a scrape every second does not pay it each time. Bounded.
AUTH_CACHE_SIZE = 64
# Checked when the user is unknown, so the answer takes as long as for a known user (no user enumeration).
_DUMMY_HASH = b"$2b$10$" + b"." * 53


@dataclass
class WebConfig:
    """What the server applies to every connection (TLS) and every request (basic auth)."""

    ssl_context: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    _passed: dict[bytes, None] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def auth_required(self) -> bool:
        return bool(self.users)

    def remembered(self, header: str | None) -> bool:
        """Whether :meth:`authorized` is known to say yes without checking a password (no users, or these
        credentials passed before): cheap, never bcrypt, so the server answers it on its event loop."""
        if not self.users:
            return True
        credentials = _credentials(header)
        with self._lock:
            return credentials is not None and credentials[2] in self._passed

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header value carries a valid user and password."""
        if self.remembered(header):
            return True
        credentials = _credentials(header)
        if credentials is None:
            return False
        user, password, key = credentials
        import bcrypt

        hashed = self.users.get(user)
        try:
            ok = bcrypt.checkpw(password.encode(), hashed or _DUMMY_HASH) and hashed is not None
        except ValueError:  # a hash bcrypt cannot read was refused at load time; defensive only
            ok = False
        if ok:
            with self._lock:
                if len(self._passed) >= AUTH_CACHE_SIZE:
                    self._passed.pop(next(iter(self._passed)))
                self._passed[key] = None
        return ok


def _credentials(header: str | None) -> tuple[str, str, bytes] | None:
    """User, password and their cache key from a basic ``Authorization`` header value; None when it is not one."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not sep:
        return None
    return user, password, hashlib.sha256(f"{user}\0{password}".encode()).digest()


def _strict(mapping: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise OvstopError(f"{where}: expected a mapping")
    unknown = sorted(set(map(str, mapping)) - allowed)
    if unknown:
        raise OvstopError(f"{where}: unknown or unsupported key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    return mapping


def _tls_context(tls: dict[str, Any], base: Path, where: str) -> ssl.SSLContext:
    def path(key: str) -> str:
        value = tls.get(key)
        if not isinstance(value, str) or not value:
            raise OvstopError(f"{where}: tls_server_config.{key} is required")
        return str(base / value)  # relative paths are relative to the config file, as in exporter-toolkit

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.minimum_version = TLS_VERSIONS[tls.get("min_version", "TLS12")]
        if "max_version" in tls:
            context.maximum_version = TLS_VERSIONS[tls["max_version"]]
    except KeyError as exc:
        raise OvstopError(f"{where}: TLS version {exc.args[0]!r}: expected TLS12 or TLS13") from None
    cert, key = path("cert_file"), path("key_file")
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise OvstopError(f"{where}: cannot load {cert} / {key}: {exc}") from None
    auth_type = tls.get("client_auth_type", "NoClientCert")
    if auth_type not in CLIENT_AUTH:
        raise OvstopError(f"{where}: client_auth_type {auth_type!r}: expected one of {', '.join(CLIENT_AUTH)}")
    context.verify_mode = CLIENT_AUTH[auth_type]
    if "client_ca_file" in tls:
        try:
            context.load_verify_locations(path("client_ca_file"))
        except (OSError, ssl.SSLError) as exc:
            raise OvstopError(f"{where}: cannot load client_ca_file: {exc}") from None
    elif context.verify_mode != ssl.CERT_NONE:
        raise OvstopError(f"{where}: client_auth_type {auth_type} needs client_ca_file")
    return context


def _users(users: Any, where: str) -> dict[str, bytes]:
    if users is None:
        return {}
    if not isinstance(users, dict):
        raise OvstopError(f"{where}: basic_auth_users: expected user: bcrypt-hash pairs")
    import bcrypt

    out: dict[str, bytes] = {}
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise OvstopError(f"{where}: basic_auth_users.{user}: not a bcrypt hash ($2a$/$2b$/$2y$...)")
        try:
            bcrypt.checkpw(b"", hashed.encode())
        except ValueError:
            raise OvstopError(f"{where}: basic_auth_users.{user}: not a valid bcrypt hash") from None
        out[str(user)] = hashed.encode()
    return out


def load(path: str) -> WebConfig:
    """Read and check a web config file; every problem is one :class:`OvstopError` line."""
    import yaml

    if "\0" in path:
        raise OvstopError(f"--web.config.file {path!r}: a path cannot contain a NUL byte")
    where = f"--web.config.file {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
        doc = yaml.safe_load(text)
    except OSError as exc:
        raise OvstopError(f"{where}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise OvstopError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    top = _strict(doc, TOP_KEYS, where)
    tls = _strict(top.get("tls_server_config"), TLS_KEYS, f"{where}: tls_server_config")
    config = WebConfig(users=_users(top.get("basic_auth_users"), where))
    if tls:
        config.ssl_context = _tls_context(tls, Path(path).resolve().parent, where)
    return config
