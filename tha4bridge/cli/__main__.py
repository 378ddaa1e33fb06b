"""`python -m tha4bridge.cli ...`: the same as the `tha4bridge` command."""
from . import app

app()
