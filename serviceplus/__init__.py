"""ServicePLUS: the command line, the settings and the process launcher."""
