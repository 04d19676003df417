"""The few Matrix client-server and Synapse admin calls ``infra up`` needs, over plain HTTP.

Set-up is synchronous and short, so it uses urllib rather than the asynchronous
Matrix adapter (``dongyu.adapters.matrix``) that the running components use.
HTTP 429 ``M_LIMIT_EXCEEDED`` is retried after ``retry_after_ms``, never dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from dongyu.errors import InfraError

log = logging.getLogger("dongyu.infra.matrix_http")

_MAX_RATE_LIMIT_RETRIES = 20


class MatrixHttpError(InfraError):
    """A Matrix HTTP call answered with an error (``errcode`` is Matrix's, e.g. M_FORBIDDEN)."""

    code = "matrix_http_error"

    def __init__(self, detail: str, *, status: int, errcode: str | None) -> None:
        super().__init__(detail)
        self.status = status
        self.errcode = errcode


@dataclass(frozen=True)
class Session:
    """A logged-in user."""

    user_id: str
    access_token: str
    device_id: str | None


class MatrixHttp:
    """A tiny synchronous Matrix client bound to one homeserver URL."""

    def __init__(self, base_url: str, *, tls_verify: bool = True, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._ssl: ssl.SSLContext | None = None
        if self.base_url.startswith("https:") and not tls_verify:
            self._ssl = ssl.create_default_context()
            self._ssl.check_hostname = False
            self._ssl.verify_mode = ssl.CERT_NONE

    def request(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> dict[str, Any]:
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        for _attempt in range(_MAX_RATE_LIMIT_RETRIES):
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s, context=self._ssl) as resp:
                    answer = json.loads(resp.read() or b"{}")
                    return answer if isinstance(answer, dict) else {"value": answer}
            except urllib.error.HTTPError as exc:
                payload = _error_body(exc)
                errcode = payload.get("errcode")
                if exc.code == 429:
                    wait_ms = int(payload.get("retry_after_ms") or 500)
                    log.info("%s %s rate limited: retrying in %d ms", method, path, wait_ms)
                    time.sleep(wait_ms / 1000)
                    continue
                raise MatrixHttpError(
                    f"{method} {path}: HTTP {exc.code} {errcode or ''} {payload.get('error', '')}".strip(),
                    status=exc.code,
                    errcode=errcode if isinstance(errcode, str) else None,
                ) from exc
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise InfraError(f"{method} {url}: {reason}") from exc
        raise InfraError(
            f"{method} {path}: still rate limited after {_MAX_RATE_LIMIT_RETRIES} tries"
        )

    # ---------------------------------------------------------------- health

    def versions(self) -> list[str]:
        answer = self.request("GET", "/_matrix/client/versions")
        versions = answer.get("versions", [])
        return [str(v) for v in versions] if isinstance(versions, list) else []

    def answers(self) -> bool:
        try:
            return bool(self.versions())
        except InfraError:
            return False

    # ---------------------------------------------------------------- users

    def register_with_shared_secret(
        self, shared_secret: str, localpart: str, password: str, *, admin: bool = False
    ) -> Session:
        """Synapse's admin registration: HMAC-SHA1 over nonce, user, password, admin flag."""
        nonce = self.request("GET", "/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode()]))
        mac.update(b"\x00admin" if admin else b"\x00notadmin")
        answer = self.request(
            "POST",
            "/_synapse/admin/v1/register",
            {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            },
        )
        return Session(answer["user_id"], answer["access_token"], answer.get("device_id"))

    def login(self, user: str, password: str, *, device_id: str | None = None) -> Session:
        body: dict[str, Any] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": password,
            "initial_device_display_name": "dongyu",
        }
        if device_id:
            body["device_id"] = device_id
        answer = self.request("POST", "/_matrix/client/v3/login", body)
        return Session(answer["user_id"], answer["access_token"], answer.get("device_id"))

    def whoami(self, token: str) -> str | None:
        """The user id of ``token``, or None when the token is not (or no longer) valid."""
        try:
            return str(
                self.request("GET", "/_matrix/client/v3/account/whoami", token=token)["user_id"]
            )
        except MatrixHttpError as exc:
            if exc.status in (401, 403):
                return None
            raise

    def devices(self, token: str) -> list[dict[str, Any]]:
        devices = self.request("GET", "/_matrix/client/v3/devices", token=token).get("devices", [])
        return list(devices) if isinstance(devices, list) else []

    # ---------------------------------------------------------------- rooms

    def create_dm(self, token: str, peer_user_id: str, *, name: str) -> str:
        answer = self.request(
            "POST",
            "/_matrix/client/v3/createRoom",
            {
                "is_direct": True,
                "preset": "trusted_private_chat",
                "invite": [peer_user_id],
                "name": name,
                "topic": "dongyu management bus (dy.bus.v0 events)",
            },
            token=token,
        )
        return str(answer["room_id"])

    def invite(self, token: str, room_id: str, user_id: str) -> None:
        self.request(
            "POST",
            f"/_matrix/client/v3/rooms/{_q(room_id)}/invite",
            {"user_id": user_id},
            token=token,
        )

    def join(self, token: str, room_id: str) -> None:
        self.request("POST", f"/_matrix/client/v3/join/{_q(room_id)}", {}, token=token)

    def joined_members(self, token: str, room_id: str) -> set[str]:
        answer = self.request(
            "GET", f"/_matrix/client/v3/rooms/{_q(room_id)}/joined_members", token=token
        )
        joined = answer.get("joined", {})
        return set(joined) if isinstance(joined, dict) else set()

    def joined_rooms(self, token: str) -> list[str]:
        rooms = self.request("GET", "/_matrix/client/v3/joined_rooms", token=token).get(
            "joined_rooms", []
        )
        return [str(r) for r in rooms] if isinstance(rooms, list) else []

    def set_direct(self, token: str, user_id: str, peer_user_id: str, room_id: str) -> None:
        """Mark ``room_id`` as the DM with ``peer_user_id`` in ``user_id``'s ``m.direct``."""
        self.request(
            "PUT",
            f"/_matrix/client/v3/user/{_q(user_id)}/account_data/m.direct",
            {peer_user_id: [room_id]},
            token=token,
        )


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _error_body(exc: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        data = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
