"""Background work of the auth service, beside its handlers."""
