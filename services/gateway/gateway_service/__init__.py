"""Gateway (BFF) for the browser SPA: sessions, CSRF, CORS, rate limits, routing."""
