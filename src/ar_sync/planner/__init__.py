"""The planner: which notes, e-mails, fees and escalations are due today, and from which
day an invoice can next have one (the quiet index). Pure, no I/O."""
