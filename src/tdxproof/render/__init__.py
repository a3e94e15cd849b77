"""Results to text, JSON and Markdown. No z3, lark or click here."""
