"""The benchmark harness (``make bench``): the machine's limit, the pipeline, latency, sweeps."""
