"""The gateway's side towards the services: the auth service's client, forwarding of /api/*,
and the keep-alive connection pool that forwarding goes over."""
