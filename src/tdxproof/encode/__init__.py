"""IR to Z3. Never imports interp/: the interpreter is the oracle for this encoding."""
