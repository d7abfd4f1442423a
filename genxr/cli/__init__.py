"""The ``genxr`` command line (typer + rich): :mod:`.app` is the root command, one module per
area adds its commands, :mod:`.output` prints results and errors. Heavy imports (torch, ray)
happen inside the command functions so that ``genxr --help`` stays fast."""
