"""Lake maintenance: compact small files and vacuum unreferenced ones in every Delta table of the lake."""
