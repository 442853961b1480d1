import sys

from benchmarks.cli import main

raise SystemExit(main(sys.argv[1:]))
