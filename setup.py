"""Declares the compiled kernels; all metadata lives in pyproject.toml."""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# FASTBP_DEBUG_KERNELS=1 rebuilds with bounds checks for memory-safety tests.
debug = os.environ.get("FASTBP_DEBUG_KERNELS") == "1"

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": False,
    "initializedcheck": debug,
    "cdivision": True,
}

extensions = [
    Extension(
        "fastbp._kernels",
        ["csrc/_kernels.pyx"],
        # the included .pxi files, the C headers and the codes' .pxd
        depends=sorted(glob.glob("csrc/*.pxi") + glob.glob("csrc/*.h")
                       + glob.glob("csrc/fastbp/*.pxd")),
        include_dirs=[numpy.get_include(), "csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # Portable wheel flags: no -march=native, no -ffast-math.
        extra_compile_args=["-O3", "-fno-math-errno", "-pthread"] if os.name != "nt" else ["/O2"],
        extra_link_args=["-pthread"] if os.name != "nt" else [],
    )
]

# include_path: the module's own .pxd (the cpdef enums) is csrc/fastbp/_kernels.pxd
setup(ext_modules=cythonize(extensions, compiler_directives=directives, include_path=["csrc"]))
