"""The ChirpStack v4 bridge: sources, event parsing, pipeline, batch writer, rejects, simulator."""
