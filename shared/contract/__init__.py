"""The wire contract: every event's payload, every topic, the CloudEvents headers and the
category taxonomy. Pure: nothing here opens a connection."""
