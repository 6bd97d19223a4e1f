"""The gateway's side towards the browser: session cookies, CSRF and CORS checks, security
headers, and the session's access token (refreshed on the way, once per refresh token)."""
