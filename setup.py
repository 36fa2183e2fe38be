"""Only the optional C fast path of the event reader needs setup.py; metadata is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # optional: without a C compiler the pure-Python reader is used (same results, slower).
        Extension("td3drive.analysis._fastevents", ["td3drive/analysis/_fastevents.c"], optional=True,
                  extra_compile_args=["-O3"]),
    ]
)
