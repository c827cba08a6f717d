"""Docs-as-code: building and rendering entity docs, API definitions and model cards."""
