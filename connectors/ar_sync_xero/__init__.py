"""ar-sync's Xero connector (xero-python).

Registered as the `xero` entry point of the `ar_sync.connectors` group; the core finds it by
name and never imports the SDK itself.
"""

from __future__ import annotations

from ar_sync_xero.connector import XeroConnector
from ar_sync_xero.plugin import XeroPlugin

plugin = XeroPlugin()

__all__ = ["XeroConnector", "XeroPlugin", "plugin"]
