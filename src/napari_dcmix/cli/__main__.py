import sys

from napari_dcmix.cli import main

# Guarded: Dask's local cluster starts its workers with multiprocessing's "spawn", which
# imports the parent's __main__ module (as __mp_main__) in every worker process.
if __name__ == "__main__":
    sys.exit(main())
