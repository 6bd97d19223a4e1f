"""Background work of the experiment service: loops that run beside the HTTP handlers (inside
every experiment process, or alone with `python -m experiment_service.workers`)."""
