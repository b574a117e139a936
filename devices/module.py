"""What the devices package plugs in: its migrations, CLI and the public lookup."""

from core.registry import Job, Module

MODULE = Module(
    name="devices",
    depends_on=("core",),
    exports=(
        "devices.activity",
        "devices.codecs",
        "devices.downlinks",
        "devices.lookup",
        "devices.models",
        "devices.service",
    ),
    routers=("devices.router:router",),
    cli=("devices.cli:devices",),
    jobs=(
        Job("devices.provision", "devices.provisioning:run_job", 30),
        Job("devices.silence", "devices.activity:run_job", 300),
    ),
    migrations=True,
)
