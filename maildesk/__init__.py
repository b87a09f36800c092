"""maildesk: an email-driven service desk for a Bangladesh government office."""

__version__ = "0.1.0"
