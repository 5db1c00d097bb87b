"""Where mail goes, from the environment (the CLI, the demo and Lambda read the same names).

AR_SYNC_MAIL_FROM           the business's address: 'Acme Ltd <accounts@acme.example>'
AR_SYNC_MAIL_REPLY_TO       replies go here (default: the From address)
AR_SYNC_MAIL_TRANSPORT      smtp (default) | ses | folder
AR_SYNC_SMTP_HOST / _PORT / _SECURITY (starttls|ssl|none) / _USERNAME
AR_SYNC_SMTP_PASSWORD       or AR_SYNC_SMTP_PASSWORD_FILE (a mounted secret)
AR_SYNC_SES_REGION / AR_SYNC_SES_CONFIGURATION_SET
AR_SYNC_MAIL_FOLDER         for `folder`: write .eml files here instead of sending
AR_SYNC_NOTIFY_WEBHOOK_SECRET  the HMAC key outgoing escalation webhooks are signed with
AR_SYNC_DEV_LOOPBACK_WEBHOOKS  1: also deliver to a local test receiver on 127.0.0.1
                            (tests and development only; never set it in a deployment)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from ar_sync.delivery.notify import WebhookSender
from ar_sync.delivery.transports import FolderMailer, Security, SesMailer, SmtpMailer, SmtpSettings
from ar_sync.domain.errors import SettingsError
from ar_sync.messages.mime import Sender
from ar_sync.messages.sending import MailSetup


def _password(env: Mapping[str, str]) -> str | None:
    if path := env.get("AR_SYNC_SMTP_PASSWORD_FILE"):
        return Path(path).read_text().strip()
    return env.get("AR_SYNC_SMTP_PASSWORD")


def mail_setup(env: Mapping[str, str] | None = None) -> MailSetup:
    """Read the settings; nothing configured means nothing is sent (the run reports it)."""
    env = os.environ if env is None else env
    setup = MailSetup()
    if secret := env.get("AR_SYNC_NOTIFY_WEBHOOK_SECRET"):
        setup.webhooks = WebhookSender(
            secret, allow_loopback=env.get("AR_SYNC_DEV_LOOPBACK_WEBHOOKS") == "1")
    sender = env.get("AR_SYNC_MAIL_FROM")
    if not sender:
        return setup
    try:
        setup.sender = Sender(sender, env.get("AR_SYNC_MAIL_REPLY_TO") or sender)
    except ValueError as exc:
        raise SettingsError(f"AR_SYNC_MAIL_FROM / AR_SYNC_MAIL_REPLY_TO: {exc}") from None
    transport = env.get("AR_SYNC_MAIL_TRANSPORT", "smtp")
    if transport == "ses":
        setup.mailer = SesMailer(region=env.get("AR_SYNC_SES_REGION"),
                                 configuration_set=env.get("AR_SYNC_SES_CONFIGURATION_SET"))
    elif transport == "folder":
        folder = env.get("AR_SYNC_MAIL_FOLDER")
        if not folder:
            raise SettingsError("AR_SYNC_MAIL_TRANSPORT=folder needs AR_SYNC_MAIL_FOLDER")
        setup.mailer = FolderMailer(Path(folder))
    elif transport == "smtp":
        host = env.get("AR_SYNC_SMTP_HOST")
        if not host:
            raise SettingsError("AR_SYNC_MAIL_FROM is set but AR_SYNC_SMTP_HOST is not "
                                "(or set AR_SYNC_MAIL_TRANSPORT=ses)")
        security = env.get("AR_SYNC_SMTP_SECURITY", "starttls")
        if security not in ("starttls", "ssl", "none"):
            raise SettingsError(f"AR_SYNC_SMTP_SECURITY must be starttls, ssl or none, "
                                f"not {security!r}")
        default_port = {"starttls": 587, "ssl": 465, "none": 25}[security]
        try:
            port = int(env.get("AR_SYNC_SMTP_PORT", default_port))
        except ValueError as exc:
            raise SettingsError("AR_SYNC_SMTP_PORT must be a number") from exc
        setup.mailer = SmtpMailer(SmtpSettings(
            host=host, port=port, security=cast(Security, security),
            username=env.get("AR_SYNC_SMTP_USERNAME"), password=_password(env)))
    else:
        raise SettingsError(f"AR_SYNC_MAIL_TRANSPORT must be smtp, ses or folder, "
                            f"not {transport!r}")
    return setup
