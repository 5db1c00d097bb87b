"""The HTTP API's resolver and what every route shares: who is calling, and the JSON error.

http.py (connect, OAuth callback, platform webhooks, the Lambda handler) and admin.py (the
signed-in business's settings) both register their routes on `app`; neither imports the other's
routes, so they form no circle.
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

_SUBJECT = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces: Cognito, Auth0, ...


app = APIGatewayHttpResolver()


class UnauthenticatedError(Exception):
    """No verified identity on the request (the route lacks the authorizer?): HTTP 401."""


def error_response(status: int, message: str) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body={"error": message}, headers={"Cache-Control": "no-store"})


def caller_business() -> str:
    """The business calling: the verified token's subject; 401 without one."""
    claims = (app.current_event.raw_event.get("requestContext", {}).get("authorizer", {})
              .get("jwt", {}).get("claims", {}))
    subject = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(subject, str) or not _SUBJECT.match(subject):
        raise UnauthenticatedError("sign in first: this route needs a bearer token")
    return subject
