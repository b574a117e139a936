"""What the parking package plugs in: zones and bays, occupancy from sensors, payment
sessions, enforcement and reports."""

from core.registry import Job, Module

MODULE = Module(
    name="parking",
    depends_on=("core", "devices", "ingest"),
    exports=("parking.reports", "parking.feed"),
    routers=("parking.router:router",),
    lifespans=("parking.live:lifespan",),
    pages=("parking.map_page:router",),
    jobs=(
        Job("parking.occupancy", "parking.occupancy_sync:run_job", 60),
        Job("parking.reports", "parking.report_mail:run_job", 600),
    ),
    subscribers=("parking.occupancy_sync:subscribe",),
    demo_seed="parking.demo:seed",
    demo_services=("parking.demo:services",),
    migrations=True,
    privacy="parking.privacy:PRIVACY",
)
