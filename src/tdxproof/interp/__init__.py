"""The reference interpreter: THE semantics of a policy. No z3, no encode/."""
