"""Text to surface AST. The only package that imports lark."""
