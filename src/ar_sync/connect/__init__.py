"""Connecting a company: the OAuth flow, rotation-safe token refresh, platform app
settings, and the platforms' webhooks reduced to re-sync requests."""
