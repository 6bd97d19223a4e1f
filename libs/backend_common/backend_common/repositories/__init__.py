"""SQL of the shared library, on tables every service database has (see its migrations)."""
