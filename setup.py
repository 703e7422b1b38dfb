"""Builds guardd's optional C accelerators (everything else is declared in pyproject.toml): the ledger parser's
(``guardd.ledger._fastparse``) and the builder of the COPY text a batch is written into PostgreSQL with
(``guardd.store.postgres._copytext``, which takes md5 from OpenSSL's libcrypto, as Python's hashlib does).

``optional=True``: where no C compiler, Python headers (or, for the second, OpenSSL's headers) are found, that
build is skipped with a warning and the package still installs; guardd then runs the Python code, which gives the
same results, more slowly (see the README, "The C parser").
"""

from setuptools import Extension, setup

FLAGS = ["-O3", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]

setup(
    ext_modules=[
        Extension(
            "guardd.ledger._fastparse",
            sources=[
                "guardd/ledger/_fastparse.c",
                "guardd/ledger/_fastparse_scan.c",
                "guardd/ledger/_fastparse_convert.c",
                "guardd/ledger/_fastparse_batch.c",
            ],
            depends=["guardd/ledger/_fastparse.h"],  # rebuilt when the shared header changes (MANIFEST.in ships it)
            optional=True,
            extra_compile_args=FLAGS,
        ),
        Extension(
            "guardd.store.postgres._copytext",
            sources=["guardd/store/postgres/_copytext.c"],
            libraries=["crypto"],
            optional=True,
            extra_compile_args=FLAGS,
        ),
    ]
)
