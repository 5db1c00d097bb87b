"""The words every layer shares: invoices, actions and ledger entries, money, errors,
calendars, pauses, payment plans, contacts and the references a customer may see. Pure."""
