"""The command line: thin click commands over capture/, formats/ and analyze/."""
