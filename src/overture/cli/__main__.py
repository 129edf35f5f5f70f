"""python -m overture.cli"""

from overture.cli import main

main()
