"""A real OpenID provider for the tests: `oidc-provider` (npm, locked in tests/e2e/js/package-lock.json
and installed by `make setup`) run with Node from tests/e2e/js/oidc-provider.mjs.

One client (`plinth`, confidential, PKCE required) whose redirect URI is the live test server's callback;
accounts are added over the script's test-only control route. `restart(key_id=...)` starts the process
again on the same port with a new signing key: the portal's cached JWKS no longer holds the kid, which
is how a provider's key rotation looks from the relying party.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.request import Request, urlopen

from tests import services

JS_DIR = Path(__file__).resolve().parents[1] / "e2e" / "js"
SCRIPT = JS_DIR / "oidc-provider.mjs"
CLIENT_ID = "plinth"
CLIENT_SECRET = "test-client-secret-5f1c0a9e"  # noqa: S105 (the test provider's own client)


class ProviderMissing(RuntimeError):
    pass


class OpenIDProvider:
    def __init__(self, redirect_uri: str, post_logout_uri: str) -> None:
        node = shutil.which("node")
        if node is None:
            raise ProviderMissing("node is not installed: run `make system-deps`")
        if not (JS_DIR / "node_modules" / "oidc-provider").is_dir():
            raise ProviderMissing("oidc-provider is not installed in tests/e2e/js/node_modules: run `make setup`")
        self.node, self.port = node, services.free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.redirect_uri, self.post_logout_uri = redirect_uri, post_logout_uri
        self.key_id = "key-1"
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="oidc-provider-", suffix=".log")[1])

    # -- process -----------------------------------------------------------------------------
    def start(self, key_id: str | None = None) -> None:
        self.key_id = key_id or self.key_id
        env = {**os.environ, "PORT": str(self.port), "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET,
               "REDIRECT_URI": self.redirect_uri, "POST_LOGOUT_URI": self.post_logout_uri,
               "KEY_ID": self.key_id, "NODE_ENV": "test"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                [self.node, str(SCRIPT)], cwd=JS_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=2) as answer:  # noqa: S310
                    if json.load(answer).get("issuer") == self.issuer:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"oidc-provider did not answer within 20 s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def restart(self, key_id: str) -> None:
        """The provider comes back with a new signing key (and forgets its sessions)."""
        self.stop()
        self.start(key_id=key_id)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- test controls -----------------------------------------------------------------------
    def _control(self, path: str, body: dict) -> None:
        request = Request(f"{self.issuer}{path}", data=json.dumps(body).encode(), method="POST",  # noqa: S310
                          headers={"Content-Type": "application/json"})
        with urlopen(request, timeout=5) as answer:  # noqa: S310 (loopback)
            assert answer.status == 200

    def set_account(self, account_id: str, **claims) -> None:
        self._control("/_test/accounts", {"id": account_id, "claims": claims})

    def mangle_next_id_token(self, mode: str | None) -> None:
        self._control("/_test/mangle", {"idToken": mode})
