"""The function library, one module per category; importing it fills ``REGISTRY``."""

from . import aggregates, dates, logic, math, records, text, users  # noqa: F401  (registration)
from .base import REGISTRY, Function

CATEGORIES = ("Logic", "Math", "Text", "Dates", "Users", "Records", "Aggregates")

__all__ = ["CATEGORIES", "REGISTRY", "Function"]
