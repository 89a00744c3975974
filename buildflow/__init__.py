"""buildflow: build whole hierarchies of Docker images as one DAG."""

__version__ = "0.6.0"
