"""Django integration: ``ENGINE: "pgguard.django"`` in ``DATABASES``.

A thin subclass of Django's own PostgreSQL backend (``pgguard.django.base``). Everything works
as with ``django.db.backends.postgresql``; in addition, when the server refuses a statement
(SQLSTATE PGG01) the refusal - message, DETAIL and HINT with the ``pgguard allow`` line - is
written to stderr and logged (logger ``pgguard``) before Django's own error handling, which for
``flush``, ``migrate`` and friends would otherwise show only a generic message.

The core package imports nothing from Django; only this subpackage does.
"""
