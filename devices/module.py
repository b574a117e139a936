"""What the devices package plugs in: routes, migrations, CLI, jobs and its public modules."""

from core.registry import Job, Module

MODULE = Module(
    name="devices",
    depends_on=("core",),
    exports=(
        "devices.activity",
        "devices.codecs",
        "devices.device_models",
        "devices.downlinks",
        "devices.lookup",
        "devices.models",
        "devices.service",
    ),
    routers=(
        "devices.router:router",
        "devices.photo_router:router",
        "devices.device_models_router:router",
    ),
    cli=("devices.cli:devices",),
    jobs=(
        Job("devices.provision", "devices.provisioning:run_job", 30),
        Job("devices.silence", "devices.activity:run_job", 300),
    ),
    migrations=True,
    privacy="devices.privacy:PRIVACY",
)
