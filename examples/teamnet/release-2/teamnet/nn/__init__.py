"""Building blocks of teamnet models."""
