"""The service runtime: the FastStream service, the consumer pipeline, the unit of work and
outbox, timers, database, Kafka, HTTP, metrics, logs, traces, settings."""
