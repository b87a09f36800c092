"""outbound layer."""
