"""Aging, DSO and risk figures from invoices and the ledger, and their HTML page. Pure."""
