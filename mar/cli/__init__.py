"""The command line: option types and shared arguments, the mar command, and one module per tool."""
