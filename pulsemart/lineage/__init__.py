"""Lineage audit: the path of one record from its source to the marts that hold it."""
