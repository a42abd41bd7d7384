"""Live progress of a cycle over WebSockets (Channels)."""
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class CycleProgressConsumer(AsyncJsonWebsocketConsumer):
    """Sends a cycle's report progress to pages that watch it.

    The worker publishes to the group ``cycle-<id>`` whenever a report changes
    phase; a page that receives a message reloads the progress fragment.
    """

    async def connect(self):
        user = self.scope.get("user")
        if not user or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group_name = f"cycle-{self.scope['url_route']['kwargs']['cycle_id']}"
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group_name"):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def cycle_progress(self, event):
        await self.send_json(event["payload"])
