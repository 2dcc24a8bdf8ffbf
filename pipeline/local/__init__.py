"""Real local stand-ins for the cloud services, for tests, demos and offline smoke tests."""
