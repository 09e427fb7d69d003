"""Report: the board tables as files people read without tools (CSV, a workbook, an HTML page)."""
