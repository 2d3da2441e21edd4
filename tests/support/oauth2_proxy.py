"""oauth2-proxy (built by hack/build-gateway.sh) against the test OIDC issuer, on
127.0.0.1, in the mode gateways use it: an authorization endpoint (`/oauth2/auth`)
answering 202 with the user in `X-Auth-Request-User/-Email/-Groups` (and the ID token in
`Authorization`) for a signed-in cookie or a valid JWT bearer token, 401 otherwise; plus
the browser sign-in flow (`/oauth2/start` -> the issuer -> `/oauth2/callback`).

    with running_issuer([alice]) as issuer, \\
            running_oauth2_proxy(bin_dir, issuer, tmp) as proxy:
        token = issuer.mint_id_token("alice")
        request(proxy.auth_url, headers={"Authorization": f"Bearer {token}"})
"""

from __future__ import annotations

import contextlib
import secrets
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .oidc_issuer import OIDCIssuer
from .process import free_port, running


@dataclass
class OAuth2Proxy:
    url: str  # http://127.0.0.1:<port>
    port: int
    log_path: Path
    cookie_name: str

    @property
    def auth_url(self) -> str:
        """The ForwardAuth / auth-url address."""
        return f"{self.url}/oauth2/auth"

    @property
    def signin_url(self) -> str:
        """Where a gateway sends a browser that is not signed in (auth-signin)."""
        return f"{self.url}/oauth2/start"


@contextlib.contextmanager
def running_oauth2_proxy(bin_dir: Path, issuer: OIDCIssuer, workdir: Path, *,
                         port: int | None = None, host: str = "127.0.0.1",
                         allowed_groups: Sequence[str] = (),
                         redirect_url: str | None = None,
                         cookie_name: str = "_deskfleet_test_oauth2",
                         extra_args: Sequence[str] = ()) -> Iterator[OAuth2Proxy]:
    """Run oauth2-proxy until the block ends; yield once it answers /ping.

    `redirect_url` defaults to its own /oauth2/callback on 127.0.0.1 (put it behind a
    gateway and pass the gateway's URL instead). `allowed_groups` maps to
    `--allowed-group` (403 for a user in none of them). `extra_args` are appended."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://{host}:{port}"
    argv = [
        str(bin_dir / "oauth2-proxy"),
        f"--http-address={host}:{port}",
        "--provider=oidc", f"--oidc-issuer-url={issuer.url}",
        f"--client-id={issuer.client_id}", f"--client-secret={issuer.client_secret}",
        f"--redirect-url={redirect_url or url + '/oauth2/callback'}",
        f"--cookie-secret={secrets.token_hex(16)}",  # 32 characters: an AES-256 key
        f"--cookie-name={cookie_name}", "--cookie-secure=false",
        "--email-domain=*", "--oidc-groups-claim=groups",
        "--scope=openid email profile groups",
        "--code-challenge-method=S256",
        "--skip-jwt-bearer-tokens", "--set-xauthrequest", "--set-authorization-header",
        "--skip-provider-button", "--reverse-proxy",
        "--upstream=static://202", "--silence-ping-logging",
        *(f"--allowed-group={g}" for g in allowed_groups),
        *extra_args,
    ]
    log_path = workdir / f"oauth2-proxy-{port}.log"

    def ping() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    with running(argv, log_path, ready=ping, what="oauth2-proxy", timeout=30):
        yield OAuth2Proxy(url=url, port=port, log_path=log_path, cookie_name=cookie_name)
