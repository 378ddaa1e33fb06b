"""Issue 15 item 11: `serve --help` says every option's default (a value, or in words when there is none)."""
import typer.main

from tha4bridge.cli import app


def test_serve_help_shows_every_default():
    for p in typer.main.get_command(app).commands["serve"].params:
        if p.param_type_name != "option" or p.is_flag or p.multiple or p.name == "help":
            continue
        said = isinstance(p.show_default, str) or "default" in (p.help or "").lower()
        assert p.default is not None or said, \
            f"serve --{p.name.replace('_', '-')} shows no default"
