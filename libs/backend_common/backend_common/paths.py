from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS_ROOT = PROJECT_ROOT / "migrations"
OPENAPI_ROOT = PROJECT_ROOT / "openapi"
