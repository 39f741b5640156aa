"""The JSON records and standalone HTML reports with plots (drift, performance, A/B): rendered
from results, written atomically, read back by the CLI, the server and the page."""
