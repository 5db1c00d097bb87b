"""The Xero emulator."""
