"""Builds the optional C accelerator of the ledger parser (everything else is declared in pyproject.toml).

``optional=True``: where no C compiler or Python headers are found the build is skipped with a warning and the
package still installs; guardd then parses with its Python path, which gives the same results, more slowly (see
the README, "The C parser").
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "guardd.ledger._fastparse",
            sources=["guardd/ledger/_fastparse.c"],
            optional=True,
            extra_compile_args=["-O3", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
        )
    ]
)
