import sys

from benchmarks.cli import main

if __name__ == "__main__":  # a spawned child (Dagster's multiprocess executor) imports this module again: do nothing there
    raise SystemExit(main(sys.argv[1:]))
