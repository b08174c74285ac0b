"""UrbanFlow connectors: sources that produce CloudEvents to Kafka, and the sink into DuckDB."""

__version__ = "0.1.0"
