"""The local stack: an embedded AWS, the token endpoint and the API on a laptop (`make run`), and the shell exports that reach it."""
