"""One small module per CLI command: options, one core call, render or --json."""
