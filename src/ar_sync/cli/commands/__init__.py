"""The `ar-sync` command groups; each module registers its commands on the app."""
