"""The error a bad user input raises wherever it is checked (config keys, backend options): the CLI turns it
into one line and exit code 2 (:data:`td3drive.core.verdicts.EXIT_BAD_INPUT`)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value that is unknown, of the wrong type or out of range."""
