"""`python -m toolkit.cli`: a Ctrl-C while the command line is still starting must not print a traceback."""

from toolkit.entry import main

main()
