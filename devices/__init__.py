"""Device models, payload codecs and the device registry."""
