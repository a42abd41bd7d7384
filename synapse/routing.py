"""WebSocket routes (Channels)."""
from django.urls import path

from workflows.consumers import CycleProgressConsumer

websocket_urlpatterns = [
    path("ws/cycles/<int:cycle_id>/progress/", CycleProgressConsumer.as_asgi()),
]
