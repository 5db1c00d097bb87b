"""The console on Lambda: the same ASGI app as `ar-sync console`, through Mangum, behind the
user pool's sign-in (hosted UI; the ID token verified against the pool's keys, issuer and
app client, as the HTTP API's JWT authorizer verifies bearer tokens).

serverless.yml routes `GET /console` and `ANY /console/{proxy+}` here without the authorizer:
a browser's page loads carry the console's session cookie, not a bearer header, so the
console signs people in itself and every page but the sign-in answers only to a session.
"Run now" puts one message on the sync queue (a run can outlast an HTTP request).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ar_sync.aws import config, secrets
from ar_sync.aws.queue import SyncMessage, send_messages
from ar_sync.console.app import build_app
from ar_sync.console.config import ConsoleConfig
from ar_sync.console.signin import CognitoSignIn
from ar_sync.delivery.settings import mail_setup
from ar_sync.sync.connector import Connection

CONSOLE_URL = "AR_SYNC_CONSOLE_URL"  # https://<api>/console: the prefix and the callbacks
SESSION_KEY_PARAMETER = "AR_SYNC_CONSOLE_SESSION_KEY_PARAMETER"  # SSM SecureString
COGNITO_DOMAIN = "AR_SYNC_COGNITO_DOMAIN"  # https://<prefix>.auth.<region>.amazoncognito.com
JWT_ISSUER = "AR_SYNC_JWT_ISSUER"  # https://cognito-idp.<region>.amazonaws.com/<pool id>
JWT_AUDIENCE = "AR_SYNC_JWT_AUDIENCE"  # the app client id


class ConsoleSettingsError(config.ConfigError):
    """A console variable the deployment should have set is missing."""


def _require(env: Mapping[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise ConsoleSettingsError(f"missing environment variables: {', '.join(missing)}")
    return [env[n] for n in names]


def request_run(connection: Connection) -> str:
    """Run now, on AWS: one message on the sync queue, like the schedule's."""
    cfg = config.AwsConfig.from_env()
    send_messages(config.sqs(), cfg.queue_url,
                  [SyncMessage(connection_id=connection.id, reason="console")])
    return "Run requested: it starts within a minute; reload this page to see it."


def console_config(env: Mapping[str, str] | None = None) -> ConsoleConfig:
    env = os.environ if env is None else env
    url, key_parameter, domain, issuer, client = _require(
        env, CONSOLE_URL, SESSION_KEY_PARAMETER, COGNITO_DOMAIN, JWT_ISSUER, JWT_AUDIENCE)
    url = url.rstrip("/")
    return ConsoleConfig(
        store=config.store(), settings_for=secrets.platform_settings, mail=mail_setup,
        public_url=url, session_key=secrets.parameter_value(key_parameter).encode(),
        signin=CognitoSignIn(domain=domain, issuer=issuer, client_id=client,
                             redirect_uri=f"{url}/auth/callback"),
        run_now=request_run, schedule="at the next scheduled run (hourly)")


@lru_cache(maxsize=1)
def _asgi() -> Any:
    from mangum import Mangum

    return Mangum(build_app(console_config()), lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (API Gateway HTTP API, payload 2.0)."""
    answer: dict[str, Any] = _asgi()(event, context)
    return answer
