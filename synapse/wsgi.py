import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synapse.settings")
# A web process takes its database connections from a pool (DATABASE_POOL, synapse/settings.py).
os.environ.setdefault("SYNAPSE_WEB_PROCESS", "true")
application = get_wsgi_application()

from synapse.heap import settle_web  # noqa: E402  (needs Django set up first)

settle_web()
