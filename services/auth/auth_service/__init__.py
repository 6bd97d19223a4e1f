"""Auth service: users, tokens, projects and members."""
