"""The analysis floor: captures in, an Analysis out (sessions, findings, mail-log links)."""

from pcapsmtp.analysis.run import Analysis, CaptureResult, Options, analyze

__all__ = ["Analysis", "CaptureResult", "Options", "analyze"]
