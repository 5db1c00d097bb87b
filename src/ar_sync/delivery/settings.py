"""Where mail goes: the deployment's defaults from the environment (the CLI, the demo and
Lambda read the same names), overridden per company by its stored CompanyMail (From,
Reply-To, SMTP login, webhook secret; `ar-sync sending set`, or PUT /admin/tenants/{t}/mail),
so one business's From never serves another.

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
from typing import Protocol, cast

from ar_sync.delivery.notify import WebhookSender
from ar_sync.delivery.transports import FolderMailer, Security, SesMailer, SmtpMailer, SmtpSettings
from ar_sync.domain.errors import SettingsError
from ar_sync.messages.mime import Sender
from ar_sync.messages.sending import MailSetup
from ar_sync.sync.company_store import CompanyMail


class MailSettingsSource(Protocol):
    def company_mail(self, connection_id: str) -> CompanyMail | None: ...


def company_mail_setup(store: MailSettingsSource, connection_id: str,
                       env: Mapping[str, str] | None = None) -> MailSetup:
    """The setup one company's run sends with."""
    return mail_setup(env, store.company_mail(connection_id))


def _password(env: Mapping[str, str]) -> str | None:
    if path := env.get("AR_SYNC_SMTP_PASSWORD_FILE"):
        return Path(path).read_text().strip()
    return env.get("AR_SYNC_SMTP_PASSWORD")


def _merged(env: Mapping[str, str], company: CompanyMail | None) -> dict[str, str]:
    """The environment with the company's own values over it. A company's From brings its own
    Reply-To (its From when it sets none), never the deployment's."""
    out = dict(env)
    if company is None:
        return out
    if company.from_address:
        out["AR_SYNC_MAIL_FROM"] = company.from_address
        out["AR_SYNC_MAIL_REPLY_TO"] = company.reply_to or company.from_address
    elif company.reply_to:
        out["AR_SYNC_MAIL_REPLY_TO"] = company.reply_to
    for field, name in (("smtp_username", "AR_SYNC_SMTP_USERNAME"),
                        ("smtp_password", "AR_SYNC_SMTP_PASSWORD"),
                        ("webhook_secret", "AR_SYNC_NOTIFY_WEBHOOK_SECRET")):
        if value := getattr(company, field):
            out[name] = value
            if name == "AR_SYNC_SMTP_PASSWORD":
                out.pop("AR_SYNC_SMTP_PASSWORD_FILE", None)
    return out


def mail_setup(env: Mapping[str, str] | None = None,
               company: CompanyMail | None = None) -> MailSetup:
    """Read the settings (the company's over the environment's); nothing configured means
    nothing is sent, which a run whose rules need e-mail reports as a configuration error."""
    env = _merged(os.environ if env is None else env, company)
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
