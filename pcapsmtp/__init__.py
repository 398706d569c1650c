"""pcapsmtp: why does this mail not get through? SMTP troubleshooting from packet captures."""

__version__ = "0.1.0"
