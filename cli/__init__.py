"""`d2l-service`, the command line: it migrates, serves, runs workers, makes API tokens, and
carries the client's commands (d2l_client). The one package that may import every other."""
