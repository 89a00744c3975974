"""The boundary to the container engine: requests built purely here, carried out in one module."""
