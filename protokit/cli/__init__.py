"""The command line: click commands, one file per noun, no logic of their own (see main.py)."""
