"""Generators for the bundled sample data, so demos and tests run without network access."""
