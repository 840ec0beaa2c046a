"""Read models for the CLI and the web page (browse, comparisons), computed as plain data from the store."""
