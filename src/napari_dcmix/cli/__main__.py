import sys

from napari_dcmix.cli import main

sys.exit(main())
