"""One search service for the whole portal: index registry, backends, query parser."""
