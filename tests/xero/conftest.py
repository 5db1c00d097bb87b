"""Xero test fixtures (helpers live in xero_support.py, a uniquely named module)."""

from xero_support import clock, emu, nz, session  # noqa: F401  (pytest fixtures)
