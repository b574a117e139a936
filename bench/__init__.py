"""`make bench`: end-to-end ingest benchmark (publish → committed) with its baselines.

Run `python -m bench` from the repository root (PYTHONPATH=.). It starts an embedded,
durable PostgreSQL and a mosquitto broker, runs the ingest worker in its own process,
and prints throughput, latency and memory next to two baselines measured in the same
run on the same rows: a per-message INSERT writer and a raw COPY ceiling.
"""
