"""Sending: SMTP, SES and folder transports, signed escalation webhooks, the mail
settings, and SES bounce handling."""
