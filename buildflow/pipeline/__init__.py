"""Reading and resolving a pipeline file: source, schema, matrix, variables, contexts, Dockerfiles, fingerprints."""
