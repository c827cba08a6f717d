"""The software catalog: entities, descriptors, ingestion, relations, MLflow sync."""
