"""Pure planning engine: pandas frames in, frames out. No xlwings, no files, no Excel types."""
