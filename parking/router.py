"""Every parking route under /parking. The live feed comes before the bay routes so
that `/bays/status` is not taken for a bay code."""

from fastapi import APIRouter

from . import enforcement_router, places_router, reports_router, sessions_router

router = APIRouter(prefix="/parking")
router.include_router(enforcement_router.router)
router.include_router(places_router.router)
router.include_router(sessions_router.router)
router.include_router(reports_router.router)
