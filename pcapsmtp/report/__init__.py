"""Output: pure functions from analysis records to text. Never parses bytes, never prints."""
