"""The customer e-mail channel and escalation notices.

Pure: compose.py (what the customer reads), group.py (one message per customer and day),
contacts.py (who gets it). Shell: transport.py (SMTP, SES, a folder), deliver.py (exactly
once through the ledger), notify.py (signed webhooks), bounces.py (SES notifications),
settings.py (where mail goes, from the environment).
"""
