"""Small widgets, each owning its own state."""
