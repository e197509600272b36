"""Shokti settings: one module, read from the environment (see .env.example).

With no DATABASE_URL/REDIS_URL the project runs embedded: a SQLite file and
Celery's filesystem broker under var/. Tests and production set both.
"""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.utils.translation import gettext_lazy
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# Embedded mode's SQLite file, broker folder and cache; movable so a test can use a tmp dir.
VAR_DIR = Path(env.str("SHOKTI_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
# Prometheus multiprocess mode writes a file per process into this folder from the first metric on:
# make it here (settings load before any metric exists) so a configured but missing folder works.
if env.str("PROMETHEUS_MULTIPROC_DIR", default=""):
    Path(env.str("PROMETHEUS_MULTIPROC_DIR")).mkdir(parents=True, exist_ok=True)


def secret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/K8s secrets)."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        return Path(path).read_text().strip()
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)
# 64+ characters: JWTs signed with it need 32 bytes (HS256) to 64 bytes (HS512).
SECRET_KEY = secret("SECRET_KEY", "dev-only-insecure-key-change-me-never-use-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

INSTALLED_APPS = [
    # The admin's theme (django-unfold): before django.contrib.admin, whose templates it overrides, and
    # it swaps in its AdminSite. Assets ship inside the package (fonts too): nothing loads from a CDN.
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_email",
    "django_celery_beat",
    "django_prometheus",
    "axes",
    "shokti",
    "crm",
    "engage",
    "coaching",
    "reports",
    "channels_app",
]

MIDDLEWARE = [
    # API views (DRF, key or token authentication) go down API_MIDDLEWARE instead of the rest of this list.
    "shokti.middleware.ApiChainMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Before anything reads the request: URL and declared body size limits (414/413, JSON).
    "shokti.middleware.RequestLimitsMiddleware",
    # A database connection lost mid-request: run it again when safe, else a JSON 503 (never a 500).
    "shokti.middleware.DatabaseUnavailableMiddleware",
    # Console pages plan each query for their own company (a generic plan made for a big one reads a small one badly).
    "shokti.middleware.ConsolePlanMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (Swagger UI, admin) served by the app itself when DEBUG=False.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The console's language per person: the session's choice (the sidebar's switch), else the browser's.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes asks: turns a locked-out admin login into its 429 page (crm/lockouts.py).
    "axes.middleware.AxesMiddleware",
]
# The chain of API views (shokti/middleware.py, ApiChainMiddleware): what an API call uses of MIDDLEWARE, in the same order.
# No sessions, CSRF (DRF views are exempt; token and key callers have no cookie to forge), Django
# authentication (DRF authenticates), messages, static files or console query planning.
API_MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "shokti.middleware.RequestLimitsMiddleware",
    "shokti.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "shokti.urls"
# Signing in at /admin/login/ directly (unfold's form sends no `next` then) lands on the console, not on
# Django's default /accounts/profile/ (a 404 here).
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"
WSGI_APPLICATION = "shokti.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'shokti.sqlite3'}"),
}
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
if IS_POSTGRES:
    DATABASES["default"]["ENGINE"] = "shokti.db.postgresql"
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault(
        "options",
        f"-c statement_timeout={env.int('DATABASE_STATEMENT_TIMEOUT_MS', default=30000)}"
        f" -c plan_cache_mode={env.str('DATABASE_PLAN_CACHE_MODE', default='auto')}"
        # JIT compiling cost 0.8-3 s on queries that run in 0.1 s (the campaign funnel's per-message
        # probes, the segment's grouped count): their summed estimates pass the JIT threshold.
        f" -c jit={'on' if env.bool('DATABASE_JIT', default=False) else 'off'}",
    )
    # Server-side parameters: psycopg prepares a statement run 5 times on a connection, so the
    # hot paths (webhook, send jobs) skip PostgreSQL's parse and plan. Off behind pgbouncer in
    # transaction mode, which cannot keep prepared statements.
    SERVER_SIDE_BINDING = env.bool("DATABASE_SERVER_SIDE_BINDING", default=True)
    DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", SERVER_SIDE_BINDING)
    DATABASES["default"]["OPTIONS"].setdefault(
        "prepare_threshold", env.int("DATABASE_PREPARE_THRESHOLD", default=5) if SERVER_SIDE_BINDING else None
    )
    # A pool of at most this many connections per process (psycopg_pool) instead of a persistent one per
    # thread: for the io worker's many threads (the Procfile sets it), which hold one only while they
    # query; the AI client gives it back while it waits on the model (shokti.db.connection_release).
    DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)
    if DATABASE_POOL_MAX_SIZE > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # pooled connections go back to the pool, not stay open
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": min(2, DATABASE_POOL_MAX_SIZE), "max_size": DATABASE_POOL_MAX_SIZE, "timeout": 30,
        }
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    # WAL lets the web process, worker and beat share the SQLite file.
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    # Tests on a file beside it, not Django's in-memory shared-cache database: that one locks whole
    # tables with no busy timeout ("database table is locked"), so concurrent deliveries would
    # fail there as they never do on the embedded default's WAL file.
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        DATABASES["default"].setdefault("TEST", {}).setdefault(
            "NAME", str(Path(DATABASES["default"]["NAME"]).with_suffix("")) + "-test.sqlite3"
        )
# The dashboard's reads (reports/) go through the `reports` alias: a read replica when DATABASE_REPLICA_URL is set,
# else the default database (a second connection to it). Tests make it a mirror of the default test database.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["reports"] = env.db_url_config(DATABASE_REPLICA_URL)
    if DATABASES["reports"]["ENGINE"].endswith("postgresql"):
        DATABASES["reports"]["ENGINE"] = DATABASES["default"]["ENGINE"]
        DATABASES["reports"].setdefault("CONN_MAX_AGE", DATABASES["default"].get("CONN_MAX_AGE", 0))
        DATABASES["reports"].setdefault("CONN_HEALTH_CHECKS", True)
        DATABASES["reports"]["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}),
                                           **DATABASES["reports"].get("OPTIONS", {})}
        DATABASES["reports"]["OPTIONS"].pop("pool", None)
else:
    DATABASES["reports"] = {**DATABASES["default"], "OPTIONS": dict(DATABASES["default"].get("OPTIONS", {}))}
DATABASES["reports"]["TEST"] = {"MIRROR": "default"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (`include=`) serve index-only reads on PostgreSQL; SQLite (the embedded default) builds them
# without the extra columns, which is all it needs, so its warning would only be noise on `make run`.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
AUTH_USER_MODEL = "crm.User"

# --- Redis, cache, Celery ---------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Fails soft (shokti/cache.py): with Redis unreachable, reads miss and writes are dropped for
    # CACHE_RETRY_SECONDS at a time, and requests go on; sockets give up after REDIS_CACHE_TIMEOUT_SECONDS.
    REDIS_CACHE_TIMEOUT_SECONDS = env.float("REDIS_CACHE_TIMEOUT_SECONDS", default=1.0)
    CACHES = {
        "default": {
            "BACKEND": "shokti.cache.FailSoftRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="shokti"),
            "OPTIONS": {
                "socket_connect_timeout": REDIS_CACHE_TIMEOUT_SECONDS,
                "socket_timeout": REDIS_CACHE_TIMEOUT_SECONDS,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

CACHE_RETRY_SECONDS = env.float("CACHE_RETRY_SECONDS", default=5.0)

BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        # Exchange tables; kombu's default is ./control, wherever the process starts.
        "control_folder": str(BROKER_DIR / "control"),
    }
    # kombu does not create the message folder: the first send would fail on a fresh checkout.
    (BROKER_DIR / "out").mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than any task may run, so an unacked task is not redelivered early.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        # Ten priority levels; the job ledger maps its 0-100 priority onto them.
        "priority_steps": list(range(10)),
        "sep": ":",
        "queue_order_strategy": "priority",
        # A publisher facing a dead broker fails at once instead of sleeping through retries: the web
        # request answers anyway and the job ledger's relay re-dispatches (engage/ledger/services.py).
        "max_retries": env.int("CELERY_BROKER_PUBLISH_MAX_RETRIES", default=0),
    }
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport with one client per channel, not one per publish (shokti/broker.py).
    CELERY_BROKER_TRANSPORT = "shokti.broker:RedisTransport"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# `whatsapp_web` is consumed by its own worker with --concurrency 1 (one browser session).
# Priorities: see shokti/celery.py (`engage.ledger.services.job_priority_step`: ledger 0-100 -> Redis step 0-9, 0 first).
# `io`: job-ledger handlers that mostly wait (the model, providers, webhooks; `queue=IO_QUEUE` in
# engage/handlers), consumed by a thread-pool worker (`--pool threads`, CELERY_IO_CONCURRENCY threads).
CELERY_TASK_QUEUES = (
    Queue("default", routing_key="default", queue_arguments={"x-max-priority": 10}),
    Queue("io", routing_key="io", queue_arguments={"x-max-priority": 10}),
    Queue("whatsapp_web", routing_key="whatsapp_web", queue_arguments={"x-max-priority": 10}),
)
CELERY_TASK_QUEUE_MAX_PRIORITY = 10
CELERY_TASK_DEFAULT_PRIORITY = 5
CELERY_TASK_ROUTES = {
    "channels_app.tasks.whatsapp_web_*": {"queue": "whatsapp_web"},
}
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Liveness (/health?deep=1; shokti/liveness.py) --------------------------------
WORKER_HEARTBEAT_SECONDS = env.float("WORKER_HEARTBEAT_SECONDS", default=10.0)
HEALTH_REQUIRED_QUEUES = env.list("HEALTH_REQUIRED_QUEUES", default=["default", "io"])
HEALTH_BEAT_MAX_AGE_SECONDS = env.int("HEALTH_BEAT_MAX_AGE_SECONDS", default=60)
HEALTH_MAX_QUEUE_AGE_SECONDS = env.int("HEALTH_MAX_QUEUE_AGE_SECONDS", default=300)

# --- Job ledger and inbound webhook (engage; see docs/jobs.md) -------------------
# Retry backoff: full jitter between half and all of base * 2**(attempt-1), capped.
JOBS_RETRY_BASE_SECONDS = env.float("JOBS_RETRY_BASE_SECONDS", default=10.0)
JOBS_RETRY_MAX_SECONDS = env.float("JOBS_RETRY_MAX_SECONDS", default=3600.0)
# Delays up to this go to the broker as a countdown; longer ones wait in the ledger for the relay.
JOBS_MAX_COUNTDOWN_SECONDS = env.int("JOBS_MAX_COUNTDOWN_SECONDS", default=60)
# A queued job whose broker message has not run after this long is dispatched again by the relay.
JOBS_DISPATCH_TIMEOUT_SECONDS = env.int("JOBS_DISPATCH_TIMEOUT_SECONDS", default=120)
# A run holds its job at most this long (default: task time limit + 60 s): its lease is not renewed past it.
JOBS_LOCK_TIMEOUT_SECONDS = env.int("JOBS_LOCK_TIMEOUT_SECONDS", default=CELERY_TASK_TIME_LIMIT + 60)
# A running job's lease: renewed every JOBS_HEARTBEAT_SECONDS (default a third of it) by its worker; a job
# whose worker died is claimable once its lease expires, and the 10-second reclaim (beat) hands it out.
JOBS_LEASE_SECONDS = env.int("JOBS_LEASE_SECONDS", default=30)
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=JOBS_LEASE_SECONDS / 3)
INBOUND_MAX_TEXT_LENGTH = env.int("INBOUND_MAX_TEXT_LENGTH", default=4096)
# Per-process caches on the inbound hot path: a revoked API key or an edited hand-off keyword list
# saved in another process takes effect within this many seconds (at once in the saving process).
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=10)
HANDOFF_KEYWORDS_CACHE_SECONDS = env.int("HANDOFF_KEYWORDS_CACHE_SECONDS", default=30)
INBOUND_DEDUPE_WINDOW_SECONDS = env.int("INBOUND_DEDUPE_WINDOW_SECONDS", default=600)
# A message that is just one of these opts out (case and punctuation aside): the SMS industry's keywords (STOPALL,
# END, QUIT, OPTOUT, REVOKE: what Twilio and the carriers honour) and their Bengali forms. A sentence asking for no
# more messages opts out too, whatever this says (engage/ai/lexicons/opt_out_requests.txt).
OPT_OUT_KEYWORDS = env.list("OPT_OUT_KEYWORDS", default=[
    "STOP", "STOP ALL", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPT OUT", "OPTOUT", "REVOKE",
    "বন্ধ", "স্টপ", "আনসাবস্ক্রাইব",
])
# A message that is just one of these, from a person who opted out on that channel, opts them back in (START and
# UNSTOP as the carriers honour them); from anyone else it is an ordinary message.
OPT_IN_KEYWORDS = env.list("OPT_IN_KEYWORDS", default=["START", "UNSTOP", "চালু", "স্টার্ট"])
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)

# --- Bookings feed: imports (crm/feed; see docs/data-api.md) -----------------------
# Rows written per transaction (and per progress step) by console imports and import_bookings' portable path.
IMPORT_BATCH_ROWS = env.int("IMPORT_BATCH_ROWS", default=1000)
# The preview checks this many rows of a file (all of them, rolled back); the rest are checked as imported.
IMPORT_PREVIEW_ROWS = env.int("IMPORT_PREVIEW_ROWS", default=10000)
# A confirmed import of at most this many rows runs in the request; a larger one on the job ledger.
IMPORT_INLINE_MAX_ROWS = env.int("IMPORT_INLINE_MAX_ROWS", default=2000)
# A background import works this long per ledger job, then queues its next slice.
IMPORT_SLICE_SECONDS = env.int("IMPORT_SLICE_SECONDS", default=240)
IMPORT_MAX_FILE_BYTES = env.int("IMPORT_MAX_FILE_BYTES", default=200 * 1024 * 1024)
# An import keeps the first this many failing rows with their errors (all are counted).
IMPORT_MAX_REPORTED_ERRORS = env.int("IMPORT_MAX_REPORTED_ERRORS", default=5000)

# --- Auth, API ------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Request bodies: larger ones are refused with a 413 before they are read (JSON, forms; Django's own
# parsing too). JSON nested deeper than API_JSON_MAX_DEPTH is a 400, checked before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=32)
# Longer URLs are a 414 in the JSON error shape (the web server hands Django request heads up to 400 KB).
HTTP_MAX_URL_LENGTH = env.int("HTTP_MAX_URL_LENGTH", default=8190)
# A 503 because the database is away tells clients to retry after this many seconds.
SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS = env.int("SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS", default=5)

# Trusted proxies in front of the web server that append the client's address to X-Forwarded-For (a load
# balancer: 1). 0: clients connect directly and X-Forwarded-For is ignored. Every client-IP use
# (throttles, login lockouts) reads it through shokti.api.client_ip.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# Login lockouts (django-axes, crm/lockouts.py) on /admin/login/ and POST /api/token/: failed passwords
# count per account and per client IP; the LOGIN_FAILURE_LIMIT-th locks it for LOGIN_LOCKOUT_MINUTES.
# The backend must come first: it refuses a locked login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=6)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "shokti.api.client_ip.client_ip"
AXES_USERNAME_CALLABLE = "crm.lockouts.login_username"
AXES_LOCKOUT_CALLABLE = "crm.lockouts.lockout_response"
# A success does not wipe the count: it would also wipe the failures of every account tried from that IP.
AXES_RESET_ON_SUCCESS = False
# Successful logins are not logged in a table of their own; crm's admin shows lockouts to superusers.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False

REST_FRAMEWORK = {
    "NUM_PROXIES": NUM_PROXIES,
    # JSON through shokti.api.parsers.json_loads (size, depth, storable text); forms for provider webhooks.
    "DEFAULT_PARSER_CLASSES": ["shokti.api.parsers.JSONParser", "shokti.api.parsers.FormParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "crm.tenancy.api.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "shokti.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "shokti.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "shokti.api.throttling.AnonRateThrottle",
        "shokti.api.throttling.UserRateThrottle",
        "shokti.api.throttling.ApiKeyRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="60/minute"),
        "user": env.str("THROTTLE_USER", default="1200/minute"),
        "api_key": env.str("THROTTLE_API_KEY", default="6000/minute"),
        # OTP login (crm/auth_apis.py); "N/15m" means N per 15 minutes.
        "otp_request_email": env.str("THROTTLE_OTP_REQUEST_EMAIL", default="3/15m"),
        "otp_request_ip": env.str("THROTTLE_OTP_REQUEST_IP", default="30/h"),
        "otp_verify_email": env.str("THROTTLE_OTP_VERIFY_EMAIL", default="15/15m"),
        "otp_verify_ip": env.str("THROTTLE_OTP_VERIFY_IP", default="60/h"),
    },
    "UNAUTHENTICATED_USER": None,
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": secret("JWT_SIGNING_KEY", SECRET_KEY),
    "UPDATE_LAST_LOGIN": False,
}

# --- OTP login (crm/auth.py), deep links, attribution (engage) ------------------
OTP_EMAIL_TOKEN_VALIDITY = env.int("OTP_EMAIL_TOKEN_VALIDITY", default=600)  # seconds
# Back-off is replaced by a hard limit of OTP_MAX_ATTEMPTS wrong tries per code.
OTP_EMAIL_THROTTLE_FACTOR = 0
OTP_MAX_ATTEMPTS = env.int("OTP_MAX_ATTEMPTS", default=5)
OTP_MAX_CODES_PER_WINDOW = env.int("OTP_MAX_CODES_PER_WINDOW", default=3)
OTP_CODES_WINDOW_MINUTES = env.int("OTP_CODES_WINDOW_MINUTES", default=15)
DEEP_LINK_BASE_URL = env.str("DEEP_LINK_BASE_URL", default="https://app.sheba.xyz/book")
DEEP_LINK_APP_URL = env.str("DEEP_LINK_APP_URL", default="https://app.sheba.xyz/booking")
DEEP_LINK_TTL_HOURS = env.int("DEEP_LINK_TTL_HOURS", default=48)
# SMS and WhatsApp reminders carry <SHORT_LINK_BASE_URL><code>, which redirects to the signed link
# (engage.campaigns.models); by default the deep links' own host, path /l/.
SHORT_LINK_BASE_URL = env.str(
    "SHORT_LINK_BASE_URL",
    default="{0.scheme}://{0.netloc}/l/".format(urlsplit(DEEP_LINK_BASE_URL)),
)
ATTRIBUTION_WINDOW_HOURS = env.int("ATTRIBUTION_WINDOW_HOURS", default=72)
# POST /internal/ai/smartengage/run-segment accepts `Authorization: Bearer <this>` (empty: API keys only).
INTERNAL_API_TOKEN = secret("INTERNAL_API_TOKEN", "")

SPECTACULAR_SETTINGS = {
    "TITLE": "Shokti API",
    "DESCRIPTION": "Multi-tenant CRM and AI engagement back-office.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from drf-spectacular-sidecar: served locally, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Docstrings of our serializer plumbing (shokti.api.serializers) are not schema descriptions.
    "GET_LIB_DOC_EXCLUDES": "shokti.api.schema.lib_doc_excludes",
    # /api/safety/check takes four of the channels: its own enum name beside crm's Channel.
    "ENUM_NAME_OVERRIDES": {"ChannelEnum": "crm.models.Channel", "SafetyCheckChannelEnum": "engage.ai.services.CHECK_CHANNELS"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "shokti.api.schema.drop_impossible_defaults",
        "shokti.api.schema.method_not_allowed_responses",
    ],
}

# --- AI ---------------------------------------------------------------------
OPENAI_API_KEY = secret("OPENAI_API_KEY", "")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = env.float("OPENAI_TIMEOUT_SECONDS", default=20.0)
OPENAI_MAX_RETRIES = env.int("OPENAI_MAX_RETRIES", default=2)
# One deadline for a message's model work (the call with its retries, moderation, tone judge); a
# company's AIConfig.time_budget_seconds overrides it. On expiry the approved fallback goes out.
AI_TIME_BUDGET_SECONDS = env.float("AI_TIME_BUDGET_SECONDS", default=15.0)
# The endpoint's moderation model (POST /v1/moderations), used when a key is configured.
OPENAI_MODERATION_MODEL = env.str("OPENAI_MODERATION_MODEL", default="omni-moderation-latest")
# Model calls in flight at once when bulk work (campaigns) generates many messages.
AI_MAX_CONCURRENCY = env.int("AI_MAX_CONCURRENCY", default=8)
# Campaign generation (SmartEngage bulk): one process-wide pool of this many model calls in flight;
# with 1 s model latency, N in flight is at most N messages/s. The HTTP client keeps as many connections.
AI_BULK_MAX_CONCURRENCY = env.int("AI_BULK_MAX_CONCURRENCY", default=200)
# SmartEngage sends of one batch in flight at once (threads, each with its own database connection).
SMARTENGAGE_SEND_CONCURRENCY = env.int("SMARTENGAGE_SEND_CONCURRENCY", default=4)
# A bulk send whose job a worker claimed first waits this long for that worker to count its result.
SMARTENGAGE_SEND_WAIT_SECONDS = env.float("SMARTENGAGE_SEND_WAIT_SECONDS", default=30.0)
# A dry run calls the model for this many customers of each batch (a preview); the rest get the fallback.
SMARTENGAGE_DRY_RUN_MODEL_SAMPLE = env.int("SMARTENGAGE_DRY_RUN_MODEL_SAMPLE", default=20)
# A dry run reads the segment at least this many customers a batch (the preset's batch size is for sends).
SMARTENGAGE_DRY_RUN_BATCH_SIZE = env.int("SMARTENGAGE_DRY_RUN_BATCH_SIZE", default=1000)
# A campaign run works this long per ledger job, then queues its next slice (well under the task time limit).
SMARTENGAGE_RUN_SLICE_SECONDS = env.int("SMARTENGAGE_RUN_SLICE_SECONDS", default=240)
# Skipped recipient rows (the customers a run's rules leave out) are deleted this many days after their run.
SMARTENGAGE_SKIPPED_RETENTION_DAYS = env.int("SMARTENGAGE_SKIPPED_RETENTION_DAYS", default=30)

# --- Email --------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# Where django.core.mail.backends.filebased.EmailBackend writes one file per message.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "emails"))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = secret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Shokti <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Marketing email (these agent types) needs the company's postal address; Feedback-ID's sender part.
EMAIL_MARKETING_AGENT_TYPES = env.list("EMAIL_MARKETING_AGENT_TYPES", default=["smartengage", "sales"])
EMAIL_FEEDBACK_ID_SENDER = env.str("EMAIL_FEEDBACK_ID_SENDER", default="shokti")
# Hosts an email's links may lead to, besides SITE_URL's, the deep-link and short-link hosts.
EMAIL_LINK_ALLOWED_HOSTS = env.list("EMAIL_LINK_ALLOWED_HOSTS", default=[])
# User-agent fragments of link scanners and prefetchers, besides the built-in list (channels_app.tracking).
EMAIL_PREFETCH_USER_AGENTS = env.list("EMAIL_PREFETCH_USER_AGENTS", default=[])
# VERP: bounces go to <local>+<token>@<domain> of this address; the mailbox that receives them.
EMAIL_BOUNCE_ADDRESS = env.str("EMAIL_BOUNCE_ADDRESS", default="")
EMAIL_BOUNCE_MAILBOX_URL = secret("EMAIL_BOUNCE_MAILBOX_URL", "")
# DKIM signing (channels_app.mail); leave empty when the relay signs.
EMAIL_DKIM_DOMAIN = env.str("EMAIL_DKIM_DOMAIN", default="")
EMAIL_DKIM_SELECTOR = env.str("EMAIL_DKIM_SELECTOR", default="")
EMAIL_DKIM_PRIVATE_KEY = secret("EMAIL_DKIM_PRIVATE_KEY", "")

# --- Channels (channels_app; see docs/channels.md) -------------------------------
# Demo only (`make run` turns it on): SMS/WhatsApp without a ChannelAccount go to the console log.
CHANNELS_CONSOLE_FALLBACK = env.bool("CHANNELS_CONSOLE_FALLBACK", default=False)
# Fernet key for ChannelAccount secrets; empty derives one from SECRET_KEY (set it in production,
# and keep it: a new key makes the stored secrets unreadable).
CHANNEL_SECRETS_KEY = secret("CHANNEL_SECRETS_KEY", "")
CHANNELS_HTTP_TIMEOUT_SECONDS = env.float("CHANNELS_HTTP_TIMEOUT_SECONDS", default=10.0)
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com")
WHATSAPP_GRAPH_API_BASE_URL = env.str("WHATSAPP_GRAPH_API_BASE_URL", default="https://graph.facebook.com")
WHATSAPP_GRAPH_API_VERSION = env.str("WHATSAPP_GRAPH_API_VERSION", default="v21.0")
# The base URL providers call and sign (Twilio signs the exact URL): behind a proxy, the public one.
CHANNELS_PUBLIC_BASE_URL = env.str("CHANNELS_PUBLIC_BASE_URL", default="")  # empty: SITE_URL
# The verify token of the callback URL shared by every number of a Meta app (/channels/whatsapp).
WHATSAPP_WEBHOOK_VERIFY_TOKEN = secret("WHATSAPP_WEBHOOK_VERIFY_TOKEN", "")
# Hosts the Graph API may send us to for a media file (besides its own).
WHATSAPP_MEDIA_HOSTS = env.list("WHATSAPP_MEDIA_HOSTS", default=["lookaside.fbsbx.com"])
# What customers send: stored through this STORAGES alias (file system under MEDIA_ROOT by default),
# at most this many bytes, of these media types (compared without parameters such as codecs).
INBOUND_MEDIA_STORAGE = env.str("INBOUND_MEDIA_STORAGE", default="default")
INBOUND_MEDIA_MAX_BYTES = env.int("INBOUND_MEDIA_MAX_BYTES", default=16 * 1024 * 1024)
INBOUND_MEDIA_ALLOWED_TYPES = env.list("INBOUND_MEDIA_ALLOWED_TYPES", default=[
    "image/jpeg", "image/png", "image/webp", "image/gif",
    "audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr",
    "video/mp4", "video/3gpp",
    "application/pdf", "text/plain", "text/vcard",
    "application/msword", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
])
# Chromium for Playwright (Debian's; Playwright cannot download its own browser here).
CHROMIUM_EXECUTABLE_PATH = env.str("CHROMIUM_EXECUTABLE_PATH", default="/usr/bin/chromium")
CHROMIUM_LAUNCH_ARGS = env.list(
    "CHROMIUM_LAUNCH_ARGS",
    default=[
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
    ],
)
WHATSAPP_WEB_BASE_URL = env.str("WHATSAPP_WEB_BASE_URL", default="https://web.whatsapp.com")
WHATSAPP_SESSION_DIR = env.str("WHATSAPP_SESSION_DIR", default=str(VAR_DIR / "whatsapp_session"))
WHATSAPP_WEB_HEADLESS = env.bool("WHATSAPP_WEB_HEADLESS", default=True)
# Human-like pacing (milliseconds, as low,high): per character, between words, before sending.
WHATSAPP_WEB_CHAR_DELAY_MS = env.list("WHATSAPP_WEB_CHAR_DELAY_MS", cast=int, default=[50, 150])
WHATSAPP_WEB_WORD_DELAY_MS = env.list("WHATSAPP_WEB_WORD_DELAY_MS", cast=int, default=[100, 300])
WHATSAPP_WEB_SEND_DELAY_MS = env.list("WHATSAPP_WEB_SEND_DELAY_MS", cast=int, default=[500, 1500])
WHATSAPP_WEB_MESSAGE_GAP_SECONDS = env.float("WHATSAPP_WEB_MESSAGE_GAP_SECONDS", default=60.0)
WHATSAPP_WEB_MESSAGE_GAP_JITTER_SECONDS = env.float("WHATSAPP_WEB_MESSAGE_GAP_JITTER_SECONDS", default=15.0)
WHATSAPP_WEB_LOAD_TIMEOUT_SECONDS = env.int("WHATSAPP_WEB_LOAD_TIMEOUT_SECONDS", default=60)
WHATSAPP_WEB_CONFIRM_TIMEOUT_SECONDS = env.int("WHATSAPP_WEB_CONFIRM_TIMEOUT_SECONDS", default=15)
WHATSAPP_WEB_RETRY_SECONDS = env.int("WHATSAPP_WEB_RETRY_SECONDS", default=300)
WHATSAPP_WEB_MAX_RETRIES = env.int("WHATSAPP_WEB_MAX_RETRIES", default=12)
# Outbox relay (channels_app.whatsapp_web_relay, beat every 60 s): a pending delivery whose task was
# published longer ago than this is published again; one still pending after GIVE_UP is reported failed.
WHATSAPP_WEB_RELAY_AFTER_SECONDS = env.int("WHATSAPP_WEB_RELAY_AFTER_SECONDS", default=300)
WHATSAPP_WEB_RELAY_GIVE_UP_AFTER_SECONDS = env.int("WHATSAPP_WEB_RELAY_GIVE_UP_AFTER_SECONDS", default=86400)
# What the page looks like (WhatsApp changes its markup now and then).
WHATSAPP_WEB_COMPOSE_SELECTOR = env.str("WHATSAPP_WEB_COMPOSE_SELECTOR", default='footer div[contenteditable="true"]')
WHATSAPP_WEB_SEND_SELECTOR = env.str(
    "WHATSAPP_WEB_SEND_SELECTOR", default='footer button[aria-label="Send"], footer span[data-icon="send"]'
)
WHATSAPP_WEB_QR_SELECTOR = env.str(
    "WHATSAPP_WEB_QR_SELECTOR", default='canvas[aria-label="Scan me!"], div[data-ref] canvas'
)
WHATSAPP_WEB_SENT_SELECTOR = env.str("WHATSAPP_WEB_SENT_SELECTOR", default="div.message-out")

# --- i18n, static -------------------------------------------------------------
LANGUAGE_CODE = "en-us"
# The console speaks English and Bengali (locale/bn: our own strings; Django and unfold bring theirs).
LANGUAGES = [("en", "English"), ("bn", "বাংলা")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Files browsers ask for at the site's root (/favicon.ico), served by WhiteNoise from here.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
# Uploaded and received files (customers' media): never served publicly; the admin streams them
# to staff who may see the conversation.
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "/media/"

# CoachNova's voice (coaching/voice.py): "" (off), "openai", "azure" or "elevenlabs"; a company turns voice on in its
# CoachNova settings. Any failure sends the text alone.
COACHNOVA_TTS_PROVIDER = env.str("COACHNOVA_TTS_PROVIDER", default="")
COACHNOVA_TTS_BASE_URL = env.str("COACHNOVA_TTS_BASE_URL", default="")
COACHNOVA_TTS_API_KEY = env.str("COACHNOVA_TTS_API_KEY", default="")
COACHNOVA_TTS_VOICE = env.str("COACHNOVA_TTS_VOICE", default="")
COACHNOVA_TTS_MODEL = env.str("COACHNOVA_TTS_MODEL", default="")
COACHNOVA_TTS_TIMEOUT_SECONDS = env.float("COACHNOVA_TTS_TIMEOUT_SECONDS", default=10.0)
STORAGES = {
    "default": {"BACKEND": env.str("DEFAULT_FILE_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")},
    # Compressed copies after `collectstatic`, served by WhiteNoise. Not the manifest (hashed
    # names) storage by default: with it, any page rendered before `collectstatic` (tests, a
    # fresh checkout) fails. Set STATICFILES_STORAGE to
    # whitenoise.storage.CompressedManifestStaticFilesStorage where collectstatic always runs first.
    "staticfiles": {
        "BACKEND": env.str("STATICFILES_STORAGE", default="whitenoise.storage.CompressedStaticFilesStorage")
    },
}

# --- Security (behind a TLS proxy in production) --------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)

# --- Admin ----------------------------------------------------------------------
# Changelist counts on big tables are estimated past this many rows.
ADMIN_EXACT_COUNT_LIMIT = env.int("ADMIN_EXACT_COUNT_LIMIT", default=10000)
# A filtered changelist's count near that limit is given this long before it is estimated instead.
ADMIN_COUNT_TIMEOUT_MS = env.int("ADMIN_COUNT_TIMEOUT_MS", default=200)

# The operations console (django-unfold): navigation by job, not by app (shokti/console.py).
UNFOLD = {
    "SITE_TITLE": "Shokti",
    "SITE_HEADER": gettext_lazy("Shokti operations"),
    "SITE_URL": "/",
    "SITE_SYMBOL": "support_agent",
    "SITE_FAVICONS": [{"rel": "icon", "type": "image/x-icon", "href": "/favicon.ico"}],
    "SHOW_HISTORY": True,
    "SHOW_LANGUAGES": True,
    "DASHBOARD_CALLBACK": "shokti.console.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": "shokti.console.sidebar_navigation",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The HTTP client under the openai SDK logs a line at INFO for every request: two a reply or a
        # campaign message (chat, moderation), ~2 % of a worker's CPU. Each call is in its AISession row.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
    },
}
