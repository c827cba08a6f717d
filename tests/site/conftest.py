"""The search benchmarks moved here with their code (portal/site): they use search's fixtures."""

from tests.search.conftest import backend_vendor, indexed  # noqa: F401 (fixtures)
