"""Helpers shared by tests, benchmarks and the demo: tiny models built offline, a local OpenAI-protocol server."""
