"""What core itself plugs in: health route, migrations, the CLI basics, the partition and
rollup jobs.

core is the shared kernel: every package depends on it and may import any of it.
"""

from core.registry import Job, Module

MODULE = Module(
    name="core",
    routers=(
        "core.router:router",
        "core.identity.auth_router:router",
        "core.identity.admin_router:router",
        "core.tenants_router:router",
    ),
    cli=(
        "core.cli_commands:db",
        "core.cli_commands:tenant",
        "core.cli_commands:secret_key",
        "core.identity.cli:user",
        "core.identity.cli:apikey",
        "core.serve:serve",
        "core.serve:scheduler_command",
        "core.demo:demo",
        "core.demo:seed",
        "core.portability.cli:export_command",
        "core.portability.cli:import_command",
        "core.backup:backup",
        "core.backup:restore",
        "core.privacy.cli:privacy",
    ),
    jobs=(
        Job("timeseries.maintain", "core.jobs:maintain_timeseries", 6 * 3600),
        Job("readings_hourly.recent", "core.jobs:rollup_recent_readings", 5 * 60),
        Job("readings_hourly.late", "core.jobs:rollup_late_readings", 24 * 3600),
        Job("privacy.retention", "core.privacy.retention:run_job", 24 * 3600),
    ),
    migrations=True,
    privacy="core.privacy.identity:PRIVACY",
)
