"""Code shared by every ETP service: settings, logging, middlewares, database, migrations."""
