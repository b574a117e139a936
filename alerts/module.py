"""What the alerts package plugs in: alert rules evaluated on ingest's readings, alerts,
incidents with their service-level clocks, notifications and their scheduled jobs."""

from core.registry import Job, Module

MODULE = Module(
    name="alerts",
    depends_on=("core", "devices", "ingest"),
    exports=(
        "alerts.rules",
        "alerts.rule_service",
        "alerts.incidents",
        "alerts.incident_report",
        "alerts.sla",
        "alerts.workflow",
    ),
    routers=(
        "alerts.rules_router:router",
        "alerts.notifications_router:router",
        "alerts.incidents_router:router",
    ),
    lifespans=("alerts.delivery:lifespan",),
    jobs=(
        Job("alerts.health", "alerts.health_checks:run_job", 60),
        Job("alerts.notifications.deliver", "alerts.delivery:deliver_job", 30),
        Job("alerts.notifications.digests", "alerts.digest:digest_job", 300),
        Job("alerts.incidents.sla", "alerts.incident_jobs:check_sla", 60),
        Job("alerts.incidents.auto_close", "alerts.incident_jobs:auto_close", 3600),
    ),
    subscribers=("alerts.alerting:subscribe",),
    demo_seed="alerts.demo:seed",
    demo_services=("alerts.demo:services",),
    migrations=True,
    privacy="alerts.privacy:PRIVACY",
)
