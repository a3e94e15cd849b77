"""Surface AST to typed model (IR)."""
