"""`python -m imgcheck` is the same as the `imgcheck` console script."""

from imgcheck.cli import main

main()
