"""sop-xl: a Python S&OP planning engine inside an Excel workbook."""
__version__ = "0.1.0"
