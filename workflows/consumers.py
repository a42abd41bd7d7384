"""Live progress of a cycle over WebSockets (Channels)."""
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer


@database_sync_to_async
def _may_watch(user, cycle_id: int) -> bool:
    from cycles.models import TestCycle
    from cycles.permissions import can_view_cycle

    cycle = TestCycle.objects.filter(pk=cycle_id).first()
    return cycle is not None and can_view_cycle(user, cycle)


class CycleProgressConsumer(AsyncJsonWebsocketConsumer):
    """Sends a cycle's report progress to pages that watch it.

    The worker publishes to the group ``cycle-<id>`` whenever a report changes
    phase; a page that receives a message reloads its progress rows. Only users
    who may see the cycle are let in (the same check as the cycle page).
    """

    async def connect(self):
        user = self.scope.get("user")
        cycle_id = self.scope["url_route"]["kwargs"]["cycle_id"]
        if not user or not user.is_authenticated:
            await self.close(code=4401)
            return
        if not await _may_watch(user, cycle_id):
            await self.close(code=4403)
            return
        self.group_name = f"cycle-{cycle_id}"
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group_name"):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def cycle_progress(self, event):
        await self.send_json(event["payload"])
