"""A django-tenants project in its documented layout (contenttypes and auth in TENANT_APPS too),
on pgguard's backend: django-tenants builds on ORIGINAL_BACKEND, which is "pgguard.django"."""

import os

import psycopg

_dsn = psycopg.conninfo.conninfo_to_dict(os.environ["PGGUARD_TEST_APP_DSN"])
SECRET_KEY = "test"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ORIGINAL_BACKEND = "pgguard.django"
DATABASES = {
    "default": {
        "ENGINE": os.environ.get("DJANGO_ENGINE", "django_tenants.postgresql_backend"),
        "NAME": _dsn["dbname"],
        "USER": _dsn["user"],
        "PASSWORD": _dsn.get("password", ""),
        "HOST": _dsn["host"],
        "PORT": _dsn["port"],
    }
}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
SHARED_APPS = ["django_tenants", "customers", "django.contrib.contenttypes", "django.contrib.auth"]
TENANT_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
INSTALLED_APPS = SHARED_APPS + [a for a in TENANT_APPS if a not in SHARED_APPS]
TENANT_MODEL = "customers.Client"
TENANT_DOMAIN_MODEL = "customers.Domain"
MIDDLEWARE: list[str] = []

if DATABASES["default"]["ENGINE"] == "pgguard.django":
    # plain Django (no tenants): pgguard's backend on its own
    DATABASE_ROUTERS = ()
    INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
