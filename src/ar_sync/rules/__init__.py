"""The follow-up rules an admin writes in YAML: schema, safe reading with line numbers,
field checks and the safe note templates. Pure."""
