"""The case database: models, engine and migrations."""
