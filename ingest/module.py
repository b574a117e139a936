"""What the ingest package plugs in: HTTP integration route, CLI, migrations."""

from core.registry import Module

MODULE = Module(
    name="ingest",
    depends_on=("core", "devices"),
    exports=("ingest.events", "ingest.simulator"),
    routers=("ingest.router:router",),
    lifespans=("ingest.router:lifespan",),
    cli=("ingest.cli:ingest", "ingest.cli:simulate"),
    demo_seed="ingest.demo:seed",
    demo_services=("ingest.demo:services",),
    migrations=True,
)
