"""Declares the compiled kernels; all metadata lives in pyproject.toml."""
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
        depends=["csrc/fastbp_sample.h", "csrc/fastbp_math.h", "csrc/fastbp_threads.h",
                 "csrc/fastbp_gemm.h"],
        include_dirs=[numpy.get_include(), "csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # Portable wheel flags: no -march=native, no -ffast-math.
        extra_compile_args=["-O3", "-pthread"] if os.name != "nt" else ["/O2"],
        extra_link_args=["-pthread"] if os.name != "nt" else [],
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
