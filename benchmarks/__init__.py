"""Reproducible benchmarks of the platform core against hand-written SQLAlchemy Core
(see benchmarks/README.md)."""
