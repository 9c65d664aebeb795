"""One module per CLI command. Each defines a typer-annotated function that `chord_robot.app.cli`
registers; module tops import only typer and the standard library (heavy imports go inside
the function), so `chord-robot --help` stays instant."""
