"""ar-sync's QuickBooks Online connector (python-quickbooks + intuit-oauth).

Registered as the `quickbooks` entry point of the `ar_sync.connectors` group; the core finds
it by name and never imports an SDK itself.
"""

from __future__ import annotations

from ar_sync_quickbooks.connector import QuickBooksConnector
from ar_sync_quickbooks.plugin import QuickBooksPlugin

plugin = QuickBooksPlugin()

__all__ = ["QuickBooksConnector", "QuickBooksPlugin", "plugin"]
