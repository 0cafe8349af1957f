"""``python -m recsql``: the same as the ``recsql`` command."""

from recsql.cli import main

main()
