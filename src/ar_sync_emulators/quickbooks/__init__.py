"""The QuickBooks Online emulator."""
