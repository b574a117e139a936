"""alerts domain: rules, alerts, incidents with their service-level clocks and workflow."""
