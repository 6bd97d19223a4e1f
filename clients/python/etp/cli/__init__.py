"""The `etp` command line."""
