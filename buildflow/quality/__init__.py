"""Checks of images and Dockerfiles: lint, layer sizes and waste, secret-like names."""
