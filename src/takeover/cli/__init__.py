"""takeover.cli: the `takeover` command. Subcommands only parse options and call into the packages."""
