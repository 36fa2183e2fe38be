"""td3drive: TD3 for end-to-end visual driving agents, with a health report you can trust."""

__version__ = "0.1.0"
