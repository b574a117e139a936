"""The dashboards of facility managers: a Dash app at /dashboard, and the ICONE index."""
