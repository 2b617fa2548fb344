# The compiled kernels of xent: one extension module, xent._kernels.
#
# Each family of functions is a source file included here (the log-sum-exp
# family, softmax cross-entropy, the binary losses, the information-theory
# functions, the focal losses); all of them run on the row primitives of
# src/xent_rows.h, compiled once per instruction set (src/xent_isa.c) and
# called through the one table xent_ops. Kernels take C-contiguous arrays
# the Python layer prepared, write into outputs it allocated, validate
# nothing and release the GIL.

include "_isa.pxi"
include "class_rows.pxi"
include "softmax.pxi"
include "cross_entropy.pxi"
include "binary.pxi"
include "information.pxi"
include "focal.pxi"
include "fast.pxi"
include "bfloat16.pxi"
include "partials.pxi"
include "distill.pxi"
