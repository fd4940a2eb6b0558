"""Service layer: async, plain arguments in, typed results or typed errors out. Never imports textual."""
