"""serve/api stage."""
