"""Parsing and validation of Backstage-compatible catalog descriptors plus Plinth's ML kinds.

Pure Python (no Django): loader (safe bounded YAML), refs (names and entity references),
validate (kinds, metadata, JSON Schemas), relations, placeholders ($text/$json/$yaml), fetch
(SSRF-safe HTTP). Errors are always DescriptorError.
"""

from .errors import DescriptorError
from .loader import Document, load_documents
from .refs import EntityRef, parse_ref

__all__ = ["DescriptorError", "Document", "EntityRef", "load_documents", "parse_ref"]
