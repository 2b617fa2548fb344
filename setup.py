"""Build the compiled kernels of xent.

``src/_kernels.pyx`` (which includes each family's ``src/<family>.pxi``)
becomes the one extension module ``xent._kernels``. Its row primitives,
``src/xent_isa.c``, are compiled once per instruction set with that set's
flags (on x86-64 with GCC or Clang: the portable baseline, AVX2+FMA and
AVX-512; elsewhere the baseline only) and linked into it; the kernels pick
the best table the CPU runs at import (``src/xent_rows.h``). OpenMP is detected by compiling and linking a small test program with the flags
the compiler understands (GCC/Clang ``-fopenmp``, Apple Clang
``-Xpreprocessor -fopenmp -lomp``, MSVC ``/openmp``); when none works the
kernels are built serial and ``xent.show_config()`` says so.

Environment:

* ``XENT_DISABLE_OPENMP=1``: build without OpenMP even if the compiler has it.
* ``XENT_EXTRA_COMPILE_ARGS``, ``XENT_EXTRA_LINK_ARGS``: flags (split like a
  shell command line) appended last to every extension's compile and link
  commands, after the OpenMP probe; ``.ci/sanitize`` passes the sanitizer flags
  this way. Unset for the release build.

Never add fast-math style flags (they break the ``-inf``/NaN contract) nor a
native-CPU target (the wheel must run on any CPU of its architecture; the
vectorised paths are chosen at run time, see src/xent_rows.h).
"""

import glob
import os
import platform
import shlex
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The instruction sets the row primitives are compiled for (x86-64, GCC or
# Clang): name, compiler flags. The baseline is the build's own target.
X86_ISAS = [
    ("BASELINE", []),
    ("AVX2", ["-mavx2", "-mfma"]),
    ("AVX512", ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw", "-mavx2", "-mfma"]),
]

OPENMP_TEST = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _openmp_candidates(compiler_type):
    if compiler_type == "msvc":
        return [(["/openmp"], [])]
    if sys.platform == "darwin":
        return [
            (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),
            (["-fopenmp"], ["-fopenmp"]),
        ]
    return [(["-fopenmp"], ["-fopenmp"])]


def _try_openmp(compiler, compile_args, link_args):
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "omp_test.c")
        with open(source, "w") as f:
            f.write(OPENMP_TEST)
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=compile_args)
            compiler.link_executable(
                objects, "omp_test", output_dir=tmp, extra_postargs=link_args
            )
        except Exception:  # CompileError, LinkError, missing tools
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        ctype = self.compiler.compiler_type
        if ctype == "msvc":
            opt = ["/O2"]
        else:
            # IEEE semantics are kept (no fast-math). -fno-trapping-math only
            # says that floating-point operations do not trap: it changes no
            # result, and lets the branch-free exp of xent_rows_impl.h be
            # vectorised (the kernels never read the floating-point flags).
            # -ffp-contract=off: nothing is fused behind the code's back (the
            # polynomials fuse explicitly, XENT_FMA), so every path rounds a
            # formula the same way and the paths give the same bits.
            opt = ["-O3", "-fno-trapping-math", "-ffp-contract=off", "-Wno-unused-function",
                   "-Wno-unreachable-code"]
        omp_compile, omp_link = [], []
        if os.environ.get("XENT_DISABLE_OPENMP", "0") not in ("", "0"):
            print("xent: OpenMP disabled by XENT_DISABLE_OPENMP")
        else:
            for c_args, l_args in _openmp_candidates(ctype):
                if _try_openmp(self.compiler, c_args, l_args):
                    omp_compile, omp_link = c_args, l_args
                    break
            else:
                print("xent: WARNING: no working OpenMP found; kernels are built serial")
        extra_compile = shlex.split(os.environ.get("XENT_EXTRA_COMPILE_ARGS", ""))
        extra_link = shlex.split(os.environ.get("XENT_EXTRA_LINK_ARGS", ""))
        if extra_compile or extra_link:
            print(f"xent: extra compile args {extra_compile}, link args {extra_link}")
        isa_objects = self._compile_isas(opt + omp_compile + extra_compile)
        # the flags, for xent.show_config() (a C string literal: no quotes or
        # backslashes inside)
        flags = " ".join(opt + omp_compile + extra_compile).replace('"', "").replace("\\", "/")
        for ext in self.extensions:
            ext.define_macros = list(ext.define_macros) + [("XENT_BUILD_FLAGS", f'"{flags}"')]
            ext.extra_compile_args = opt + omp_compile + list(ext.extra_compile_args) + extra_compile
            ext.extra_link_args = omp_link + list(ext.extra_link_args) + extra_link
            ext.extra_objects = list(ext.extra_objects) + isa_objects
        super().build_extensions()

    def _compile_isas(self, args):
        """src/xent_isa.c compiled once per instruction set (in parallel)."""
        dispatch = (self.compiler.compiler_type != "msvc"
                    and platform.machine().lower() in ("x86_64", "amd64"))
        isas = X86_ISAS if dispatch else X86_ISAS[:1]
        print("xent: row primitives for", ", ".join(name.lower() for name, _ in isas))

        def compile_one(isa):
            name, flags = isa
            macros = [(f"XENT_ISA_{name}", "1")] + ([("XENT_X86_DISPATCH", "1")] if dispatch else [])
            return self.compiler.compile(
                ["src/xent_isa.c"], output_dir=os.path.join(self.build_temp, name.lower()),
                macros=macros, include_dirs=["src"], extra_postargs=args + flags,
                depends=DEPENDS, debug=self.debug)

        with ThreadPoolExecutor(len(isas)) as pool:
            return [obj for objs in pool.map(compile_one, isas) for obj in objs]


# rebuild when the shared row primitives or a family's source change
DEPENDS = sorted(glob.glob("src/*.h") + glob.glob("src/*.pxd") + glob.glob("src/*.pxi")
                 + ["src/xent_isa.c"])

extensions = [Extension("xent._kernels", ["src/_kernels.pyx"], include_dirs=["src"], depends=DEPENDS)]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src"],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "cpow": True,
            "embedsignature": True,
        },
    ),
    cmdclass={"build_ext": BuildExt},
)
