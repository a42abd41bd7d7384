"""Synapse settings, read from the environment (django-environ).

Every setting has a default that runs the embedded product: SQLite, the local
Temporal dev server, an in-memory Channels layer, the offline LLM provider and
console email. Production sets the environment variables listed in README.md.
"""
import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEV_SECRET_KEY = "dev-only-insecure-key-change-me"
env = environ.Env(
    # Off unless asked for: `make run`, `make test` and pytest (pytest.ini) set DEBUG=true.
    DEBUG=(bool, False),
    SECRET_KEY=(str, DEV_SECRET_KEY),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]", "testserver"]),
)
DATA_DIR = Path(env.str("SYNAPSE_DATA_DIR", default=str(BASE_DIR / ".data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env("DEBUG")
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if env.bool("SECURE_PROXY_SSL", default=False):
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True

# --- security and accounts (issue 8) ---
if not DEBUG and (SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "SECRET_KEY is the development key (or too short) and DEBUG is off: set SECRET_KEY to a long random "
        "value (python -c 'import secrets; print(secrets.token_urlsafe(50))'), or DEBUG=true for development."
    )
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=globals().get("SESSION_COOKIE_SECURE", False))
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=globals().get("CSRF_COOKIE_SECURE", False))
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Idle timeout: a signed-in request renews the session (synapse.middleware.SessionRenewalMiddleware, at most
# once every SESSION_RENEW_SECONDS), so it ends SESSION_IDLE_SECONDS after the last request, give or take that.
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=30 * 60)
SESSION_RENEW_SECONDS = env.int("SESSION_RENEW_SECONDS", default=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Login lockout (django-axes): after AXES_FAILURE_LIMIT failures for a username from an address, that
# pair is locked out for AXES_COOLOFF_MINUTES (the right password too); an Admin can reset it (axes_reset).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", default=15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0) or None
# --- end security and accounts ---

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "axes",
    "channels",
    "synapse.apps.SynapseConfig",
    "cycles.apps.CyclesConfig",
    "versioning.apps.VersioningConfig",
    "workflows.apps.WorkflowsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ in every mode, so a run without DEBUG still has its styles.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "synapse.middleware.SessionRenewalMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "workflows.logs.LogContextMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out username is refused before its password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "synapse.urls"
WSGI_APPLICATION = "synapse.wsgi.application"
ASGI_APPLICATION = "synapse.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # {% url %} reversing each view once per shape: pages link every row (synapse/templatetags/fast_url.py).
            "builtins": ["synapse.templatetags.fast_url"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "synapse.context_processors.roles",
            ],
        },
    },
]

# SQLite is the embedded default; DATABASE_URL switches to PostgreSQL.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'synapse.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; the busy timeout
    # makes a writer wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Worker threads in tests need a database file, not a per-connection
    # in-memory one.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # The web processes (synapse/asgi.py and synapse/wsgi.py say they are one) take their connections from a
    # pool (psycopg_pool, Django's own support): a request doesn't connect anew (10-20 ms a page at 50
    # reports), and the statements a connection prepared serve the next requests. Django's advice under ASGI,
    # where persistent connections don't fit. Unless CONN_MAX_AGE is set: then connections are kept per
    # thread, as before. The worker keeps a connection per activity thread (run_temporal_worker).
    if env.bool("DATABASE_POOL", default=env.bool("SYNAPSE_WEB_PROCESS", default=False)
                and not DATABASES["default"]["CONN_MAX_AGE"]):
        if DATABASES["default"]["CONN_MAX_AGE"]:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                "DATABASE_POOL keeps the web's connections in a pool: leave CONN_MAX_AGE at 0 with it "
                "(or set DATABASE_POOL=false to keep connections per thread instead).")
        pool = {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
            # Seconds a request waits for a connection when all are taken, before it fails.
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10),
        }
        if not 0 <= pool["min_size"] <= pool["max_size"] or pool["max_size"] < 1 or pool["timeout"] <= 0:
            from django.core.exceptions import ImproperlyConfigured

            # Said at start, not at the first request that asks the pool for a connection.
            raise ImproperlyConfigured(
                f"DATABASE_POOL_MIN_SIZE ({pool['min_size']}) must be 0 to DATABASE_POOL_MAX_SIZE "
                f"({pool['max_size']}, at least 1), and DATABASE_POOL_TIMEOUT ({pool['timeout']:g}) above 0.")
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = pool
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Parameters bound by the server, and a statement a connection runs again and again (the same few
        # dozen from every activity, page and API list) parsed and planned once per connection instead of
        # every time. Off behind a pooler that can't keep prepared statements (PgBouncer in transaction
        # mode without max_prepared_statements).
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": env.int("DATABASE_PREPARE_THRESHOLD", default=5)})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "synapse.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "cycles:my-work"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("STATIC_ROOT", default=str(DATA_DIR / "staticfiles"))
# Without collectstatic (make run), WhiteNoise finds files where runserver would.
WHITENOISE_USE_FINDERS = True

# Uploaded population files and evidence are private: there is no MEDIA_URL
# route; files are served only through views that check permissions.
MEDIA_ROOT = env("MEDIA_ROOT", default=str(DATA_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Channels: Redis across processes in production, in-memory when embedded.
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

REST_FRAMEWORK = {
    # Bearer first: an anonymous call gets 401 with WWW-Authenticate, not a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "synapse.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "synapse.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "synapse.api.exception_handler",
    # The contract (issue 8): JSON only (the browsable API is replaced by /api/v1/docs/), bodies parsed
    # under limits, an OpenAPI 3 schema from drf-spectacular, filters from django-filter.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "synapse.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}
API_JSON_MAX_BYTES = env.int("API_JSON_MAX_BYTES", default=1024 * 1024)
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=32)
SPECTACULAR_SETTINGS = {
    "TITLE": "Synapse API",
    "DESCRIPTION": (
        "Compliance test cycles: LOBs, reports, cycles and every phase's records. Authenticate with "
        "`Authorization: Bearer <token>` (tokens on the API tokens page). Errors are RFC 9457 problem details "
        "(application/problem+json)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "PhaseEnum": "cycles.models.Phase",
        "VersionStatusEnum": "versioning.models.VersionStatus",
        "InformationRequestStatusEnum": "cycles.models.InformationRequest.Status",
        "PopulationFormatEnum": "cycles.models.PopulationFile.Format",
        "SamplingMethodEnum": "cycles.models.SamplingPlan.Method",
        "TestMethodEnum": "cycles.models.execution.TestMethod",
        "ObservationStatusEnum": "cycles.models.observations.Observation.Status",
        "ReportFrequencyEnum": "cycles.models.core.Frequency",
        "ScheduleFrequencyEnum": "workflows.models.CycleSchedule.Frequency",
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "synapse.schema.add_problem_responses"],
}

# Temporal. The seeds' TEMPORAL_HOST is accepted as an alias of TEMPORAL_ADDRESS.
TEMPORAL_ADDRESS = env("TEMPORAL_ADDRESS", default=env("TEMPORAL_HOST", default="localhost:7233"))
TEMPORAL_NAMESPACE = env("TEMPORAL_NAMESPACE", default="default")
TEMPORAL_TASK_QUEUE = env("TEMPORAL_TASK_QUEUE", default="synapse-workflow-queue")
TEMPORAL_API_KEY = env("TEMPORAL_API_KEY", default="")
TEMPORAL_TLS = env.bool("TEMPORAL_TLS", default=bool(TEMPORAL_API_KEY))
TEMPORAL_ACTIVITY_TIMEOUT = env.int("TEMPORAL_ACTIVITY_TIMEOUT", default=300)
TEMPORAL_WORKFLOW_TIMEOUT = env.int("TEMPORAL_WORKFLOW_TIMEOUT", default=0)
TEMPORAL_RPC_TIMEOUT = env.int("TEMPORAL_RPC_TIMEOUT", default=10)
TEMPORAL_WORKER_MAX_ACTIVITIES = env.int("TEMPORAL_WORKER_MAX_ACTIVITIES", default=10)
TEMPORAL_UI_URL = env("TEMPORAL_UI_URL", default="http://localhost:8233")
# Issue 10: answers within seconds while Temporal or the worker is away, recovery in seconds.
TEMPORAL_DECISION_TIMEOUT = env.float("TEMPORAL_DECISION_TIMEOUT", default=2.0)
TEMPORAL_UPDATE_RESULT_TIMEOUT = env.float("TEMPORAL_UPDATE_RESULT_TIMEOUT", default=15.0)
TEMPORAL_STATUS_TIMEOUT = env.float("TEMPORAL_STATUS_TIMEOUT", default=2.0)
TEMPORAL_BREAKER_SECONDS = env.float("TEMPORAL_BREAKER_SECONDS", default=10.0)
TEMPORAL_OUTBOX_MESSAGE_TIMEOUT = env.float("TEMPORAL_OUTBOX_MESSAGE_TIMEOUT", default=5.0)
TEMPORAL_RECONCILE_INTERVAL = env.int("TEMPORAL_RECONCILE_INTERVAL", default=300)
# Issue 9: workflow operations. Alerts for workflows stuck on the system, decisions not delivered;
# the worker's heartbeat; Prometheus from the worker (Synapse's metrics, and the SDK's own runtime ones).
WORKFLOW_STUCK_AFTER_MINUTES = env.int("WORKFLOW_STUCK_AFTER_MINUTES", default=60)
WORKFLOW_UNDELIVERED_AFTER_MINUTES = env.int("WORKFLOW_UNDELIVERED_AFTER_MINUTES", default=10)
WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", default=10)
# How often a running report workflow is asked for its live state (who it waits on) by one of the workers' monitors.
WORKFLOW_LIVE_REFRESH_SECONDS = env.int("WORKFLOW_LIVE_REFRESH_SECONDS", default=60)
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)  # 0: off
TEMPORAL_SDK_METRICS_ADDRESS = env("TEMPORAL_SDK_METRICS_ADDRESS", default="")  # e.g. 0.0.0.0:9465
# Processes of its own the worker renders final report PDFs in (0: in the worker's process). WeasyPrint
# holds the GIL while it lays a report out; in the worker's process it stalls every other activity.
PDF_RENDER_PROCESSES = env.int("PDF_RENDER_PROCESSES", default=min(os.cpu_count() or 1, 4))
LOG_FORMAT = env("LOG_FORMAT", default="plain")  # "json": one JSON object per line

# LLM provider for drafting attributes: offline (deterministic, no network),
# anthropic (Messages API) or openai (chat completions, any compatible server).
LLM_PROVIDER = env("LLM_PROVIDER", default="offline")
LLM_API_KEY = env("LLM_API_KEY", default="")
LLM_BASE_URL = env("LLM_BASE_URL", default="")
LLM_MODEL = env("LLM_MODEL", default="")
LLM_TIMEOUT = env.float("LLM_TIMEOUT", default=60.0)

# Population files.
POPULATION_MAX_BYTES = env.int("POPULATION_MAX_BYTES", default=1024 * 1024 * 1024)

# Evidence uploads (Requests for Information).
EVIDENCE_MAX_BYTES = env.int("EVIDENCE_MAX_BYTES", default=50 * 1024 * 1024)
EVIDENCE_ALLOWED_EXTENSIONS = env.list(
    "EVIDENCE_ALLOWED_EXTENSIONS", default=["pdf", "png", "jpg", "jpeg", "csv", "xlsx", "xls", "docx", "txt",
                                            "zip", "msg", "eml"]
)
EVIDENCE_MAX_FILES_PER_UPLOAD = env.int("EVIDENCE_MAX_FILES_PER_UPLOAD", default=20)

# Links in emails point here when set (e.g. https://synapse.example.com).
SITE_URL = env("SITE_URL", default="")

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
# An unreachable SMTP server must fail the email activity (which retries), not hang it.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="synapse@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
                   "json": {"()": "workflows.logs.JsonFormatter"}},
    "filters": {"context": {"()": "workflows.logs.ContextFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"temporalio": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
