"""What the dashboard package plugs in: the Dash app at /dashboard, its login page, and
the monthly report e-mailed to each town.

It reads other packages' tables (devices, alerts, incidents) through SQL of its own, as a
reader, and uses the control map's login script (parking/static): hence its dependencies.
"""

from core.registry import Job, Module

MODULE = Module(
    name="dashboard",
    depends_on=("core", "devices", "parking", "alerts", "catalog"),
    pages=("dashboard.login:router",),
    mounts=("dashboard.app:mount",),
    jobs=(Job("dashboard.monthly_report", "dashboard.monthly_report:run_job", 600),),
    migrations=True,
)
