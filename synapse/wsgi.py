import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synapse.settings")
application = get_wsgi_application()

from synapse.heap import settle_web  # noqa: E402  (needs Django set up first)

settle_web()
