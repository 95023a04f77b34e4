"""GridLink's shared package: settings, events, topics, Kafka, database, metrics, HTTP helpers."""
