"""A minimal OAuth provider kind for testing the sign-in machinery against the fake OAuth server (before and
beside the real drives): it signs in, refreshes and reads its account from the fake's /userinfo; it stores no
files (the storage operations are the drives' business and are tested in their own suites)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import BinaryIO

from engine.auth.oauth import OAuthSpec
from engine.providers.base import (
    AuthError,
    Capabilities,
    Expect,
    HashKind,
    MtimeMode,
    NetworkError,
    OptionSpec,
    RemoteEntry,
)
from engine.providers.oauth import ACCOUNT_OPTION, TOKEN_OPTION, OAuthProvider

KIND = "oauth-test"
TARGET = "tests.auth.oauth_kind:OAuthTestProvider"


class OAuthTestProvider(OAuthProvider):
    kind = KIND
    title = "OAuth test service"
    option_specs = (
        OptionSpec("client_id", "client id", required=True),
        OptionSpec("client_secret", "client secret", secret=True),
        OptionSpec("server", "the fake OAuth server's address", required=True),
        OptionSpec("flow", "code-loopback, code-none or device", default="code-loopback"),
        TOKEN_OPTION,
        ACCOUNT_OPTION,
    )
    capabilities = Capabilities(hash_kind=HashKind.NONE, mtime_mode=MtimeMode.NONE)

    @classmethod
    def oauth_spec(cls, options: Mapping[str, str]) -> OAuthSpec:
        server = options["server"].rstrip("/")
        flow = options.get("flow") or "code-loopback"
        return OAuthSpec(
            client_id=options["client_id"],
            client_secret=options.get("client_secret") or None,
            auth_url=server + "/authorize",
            token_url=server + "/token",
            device_url=server + "/device/code" if flow == "device" else None,
            scopes=("files",),
            redirect="none" if flow == "code-none" else "loopback",
        )

    def _userinfo(self) -> dict:
        token = self.access_token()
        for attempt in range(2):
            request = urllib.request.Request(
                self.options["server"].rstrip("/") + "/userinfo", headers={"Authorization": f"Bearer {token}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    return json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                if exc.code != 401 or attempt:
                    raise AuthError(f"the service refused the token (HTTP {exc.code})") from None
                token = self.access_token(rejected=token)
            except OSError as exc:
                raise NetworkError(f"cannot reach the service: {exc}") from None
        raise AssertionError("unreachable")

    def account_id(self) -> str:
        return str(self._userinfo()["account_id"])

    def check(self) -> None:
        self._userinfo()

    def list(self, folder: str) -> Iterator[RemoteEntry]:
        self._userinfo()
        return iter(())

    def download(self, path: str, out: BinaryIO) -> RemoteEntry:
        raise NotImplementedError("the test kind stores no files")

    def upload(self, path: str, src: BinaryIO, size: int, mtime: float, *, expect: Expect | None = None) -> RemoteEntry:
        raise NotImplementedError("the test kind stores no files")

    def delete(self, path: str, *, expect: Expect | None = None) -> None:
        raise NotImplementedError("the test kind stores no files")

    def mkdir(self, path: str) -> RemoteEntry:
        raise NotImplementedError("the test kind stores no files")

    def rmdir(self, path: str) -> None:
        raise NotImplementedError("the test kind stores no files")
