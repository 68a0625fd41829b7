"""Discord deliveries live here (see the Discord monitoring issue); no models yet."""
