"""What the catalog package plugs in: the shared solution catalogue (domains, solutions,
versions, price lines, lifecycle), its operator routes, its seed data and CLI."""

from core.registry import Module

MODULE = Module(
    name="catalog",
    depends_on=("core", "devices", "alerts"),
    exports=("catalog.orders", "catalog.business_report"),
    routers=("catalog.solutions_router:router", "catalog.commerce_router:router"),
    cli=("catalog.cli:catalog",),
    demo_seed="catalog.seed:demo_seed",
    migrations=True,
    privacy="catalog.privacy:PRIVACY",
)
