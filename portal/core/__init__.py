"""Cross-cutting pieces: request context, logging, health, metrics, base views and models."""
