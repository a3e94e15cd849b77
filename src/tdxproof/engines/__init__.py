"""Engines: turn a model into PropertyResults. Every witness is replayed on the
reference interpreter before it becomes a result."""
