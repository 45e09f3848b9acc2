"""``python -m docunet_rt …`` = the ``docunet-rt`` command (where no console script is installed)."""

from .cli.main import main

main()
