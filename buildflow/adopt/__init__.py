"""Pipelines made from what a project already has: a tree of Dockerfiles (`init`) or a bake file (`import bake`)."""
