"""Live progress over WebSockets: only people who may see the cycle can watch it."""
import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import connections

from synapse.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(user, cycle_id):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/cycles/{cycle_id}/progress/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


async def test_watchers_of_the_cycle_get_progress_and_others_are_refused(users, cycle, cycle_report):
    communicator, connected, _ = await _connect(users["tester"], cycle.pk)
    assert connected
    await get_channel_layer().group_send(
        f"cycle-{cycle.pk}", {"type": "cycle.progress", "payload": {"cycle_report_id": cycle_report.pk,
                                                                      "phase": "scoping"}})
    assert await communicator.receive_json_from() == {"cycle_report_id": cycle_report.pk, "phase": "scoping"}
    await communicator.disconnect()

    for intruder in (users["tester2"], users["data_owner"], AnonymousUser()):
        _, connected, code = await _connect(intruder, cycle.pk)
        assert not connected and code in (4401, 4403)
    _, connected, code = await _connect(users["admin"], cycle.pk + 999)
    assert not connected and code == 4403
    # The permission checks ran on Channels' database thread; let the test database go.
    await database_sync_to_async(connections.close_all)()
