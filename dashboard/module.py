"""What the dashboard package plugs in: the Dash app at /dashboard and its login page.

It reads other packages' tables (devices, alerts, incidents) through SQL of its own, as a
reader, and uses the control map's login script (parking/static): hence its dependencies.
"""

from core.registry import Module

MODULE = Module(
    name="dashboard",
    depends_on=("core", "devices", "parking", "alerts"),
    pages=("dashboard.login:router",),
    mounts=("dashboard.app:mount",),
)
