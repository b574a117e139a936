"""Shared platform services: settings, database, migrations, time series, events, app and CLI."""
