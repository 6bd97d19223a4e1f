"""Experiment service: experiments, runs, capture sessions, sensors, webhooks."""
