"""The policy file format: models, loading, validation."""
