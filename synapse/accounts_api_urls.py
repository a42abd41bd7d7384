"""Routes of the accounts API under /api/v1/."""
from django.urls import path
from rest_framework.routers import SimpleRouter

from synapse import accounts_api

router = SimpleRouter()
router.register("users", accounts_api.UserViewSet, basename="api-user")
router.register("tokens", accounts_api.ApiTokenViewSet, basename="api-token")

urlpatterns = [
    path("me/", accounts_api.MeApi.as_view(), name="api-me"),
    *router.urls,
]
