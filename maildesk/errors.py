"""Errors that a person can act on: a config error names the file and the key to fix."""


class MaildeskError(Exception):
    """Base class for errors maildesk reports to the user without a traceback."""


class ConfigError(MaildeskError):
    """A problem in a config file, pointing at the file and the dotted key."""

    def __init__(self, file, key: str, message: str):
        self.file = str(file)
        self.key = key
        self.message = message
        super().__init__(f"{self.file}: {key}: {message}")
