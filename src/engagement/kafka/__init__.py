"""What travels on Kafka: topic names and record keys (``topics``), CloudEvents headers, the
record encodings of score changes, erasures and bad rows, partitioning, and topic admin
(docs/topics.md). No Redis here."""
