# The optimisers as the training loops (training.pxi, threads.pxi) and the
# Trainer see them: a table of functions (OptimizerFunctions) with a state
# of its own (fbp_optimizer_state). Each optimiser lives in a file of its own
# (optim_sgd.pxi, optim_adam.pxi, ...) that fills its table and registers it
# by name (register_optimizer); Trainer.set_optimizer looks it up. The loops
# call the table through the inline functions at the end of this file, once
# per batch or per block of parameters, never per element, and never ask
# which optimiser it is. Also here: the L2 term's loops, which the passes
# share (fastbp_optim.h).

cdef extern from "fastbp_optim.h" nogil:
    double fbp_l2_gradient_f(const float* W, float* dW, Py_ssize_t n, double l2_over_m)
    double fbp_l2_gradient_d(const double* W, double* dW, Py_ssize_t n, double l2_over_m)
    double fbp_l2_shrink_f(float* W, Py_ssize_t n, float shrink)
    double fbp_l2_shrink_d(double* W, Py_ssize_t n, double shrink)


cdef inline double l2_gradient(const floating* W, floating* dW, Py_ssize_t size,
                               double l2_over_m) noexcept nogil:
    """dW = (l2/m) W; returns sum W^2 (csrc/fastbp_optim.h)."""
    if floating is double:
        return fbp_l2_gradient_d(W, dW, size, l2_over_m)
    else:
        return fbp_l2_gradient_f(W, dW, size, l2_over_m)


cdef inline double l2_shrink(floating* W, Py_ssize_t size, floating shrink) noexcept nogil:
    """W *= shrink; returns sum W^2 before (csrc/fastbp_optim.h)."""
    if floating is double:
        return fbp_l2_shrink_d(W, size, shrink)
    else:
        return fbp_l2_shrink_f(W, size, shrink)


# ---------------------------------------------------------------------------
# An optimiser's table and state

cdef enum:
    # slots of fbp_optimizer_state and StepRates; an optimiser needing more
    # raises them here (register_optimizer refuses one that does not fit)
    OPTIMIZER_HYPER = 8
    OPTIMIZER_BUFFERS = 4
    STEP_RATES = 4


cdef struct StepRates:
    # the scalars of one step that its element loops take, worked out once
    # per batch by the optimiser's advance (SGD: lr; Adam: lr_t and eps_t)
    double value[STEP_RATES]


cdef struct fbp_optimizer_state


cdef struct OptimizerFunctions:
    # One optimiser's functions. The loops call them once per batch or per
    # block of parameters; the step functions come per dtype.
    #
    # Whether a step is p -= opt.lr g with no state (NULL: never). The loops
    # then fold it into the weight-gradient products (backward_sgd, the
    # threads' update, the per-sample path) and call neither advance nor step.
    bint (*is_plain)(const fbp_optimizer_state* opt) noexcept nogil
    # One step further: counts it (opt.step_count, if the step depends on the
    # count) with any scalar carried from step to step, and writes the rates
    # of that step. Called after the batch's loss proved finite.
    void (*advance)(fbp_optimizer_state* opt, StepRates* rates) noexcept nogil
    # The step on params[offset:offset + count] (and the same part of its
    # buffers) with grad[0:count], the gradient of those elements. grad is
    # the block's own start, not a base that offset indexes: a block whose
    # gradient lives in a buffer of its own (the bfloat16 team's panels,
    # training_bf16.pxi) would need a pointer outside that buffer, which C
    # leaves undefined. It comes after count so that a step written for the
    # old order (grad[offset + i]) fails to build instead of misreading.
    void (*step_d)(const fbp_optimizer_state* opt, double* params, Py_ssize_t offset,
                   Py_ssize_t count, const double* grad, const StepRates* rates) noexcept nogil
    void (*step_f)(const fbp_optimizer_state* opt, float* params, Py_ssize_t offset,
                   Py_ssize_t count, const float* grad, const StepRates* rates) noexcept nogil
    # NULL, or the step on rows [i0, i1) of W_0 after a sparse batch's
    # backward pass (backward_pass with sparse_first_layer), fused with the
    # L2 term: the gradient is (l2/m) W_0 plus dW_0 on the rows net.row_marks
    # marks, which it unmarks. Returns sum W^2 over the rows, before the step.
    double (*marked_rows_d)(const fbp_optimizer_state* opt, const fbp_network* net,
                            Py_ssize_t i0, Py_ssize_t i1, double l2_over_m,
                            const StepRates* rates) noexcept nogil
    double (*marked_rows_f)(const fbp_optimizer_state* opt, const fbp_network* net,
                            Py_ssize_t i0, Py_ssize_t i1, double l2_over_m,
                            const StepRates* rates) noexcept nogil
    # NULL, or positions [start, stop) of a batch-1 source of dense, unweighted
    # rows in one fused pass per row (the per-sample path, csrc/fastbp_sample.h),
    # with the same weights and totals as the minibatch loop would give; as
    # train_rows_kernel, returns 0 or 1 (a loss not finite), or
    # SAMPLE_EPOCH_DECLINED. Taken when not is_plain (plain SGD has a fused
    # path of its own).
    int (*sample_epoch_d)(fbp_optimizer_state* opt, const fbp_network* net,
                          const fbp_batches* data, Py_ssize_t start, Py_ssize_t stop,
                          fbp_totals* totals) noexcept nogil
    int (*sample_epoch_f)(fbp_optimizer_state* opt, const fbp_network* net,
                          const fbp_batches* data, Py_ssize_t start, Py_ssize_t stop,
                          fbp_totals* totals) noexcept nogil
    # NULL, or n_epochs whole epochs of such a source in one call (epoch e:
    # positions [e rows, (e + 1) rows) with an order, else [0, rows)), each
    # epoch's J sums to data_sums[e] and penalty_sums[e]; returns the epochs
    # completed (status 1 or 2, as train_epochs_kernel), or -1 where it does
    # not take these settings or this network (nothing trained: the epochs
    # go one by one). Only with sample_epoch.
    Py_ssize_t (*sample_epochs_d)(fbp_optimizer_state* opt, const fbp_network* net,
                                  const fbp_batches* data, Py_ssize_t n_epochs, Py_ssize_t rows,
                                  double* data_sums, double* penalty_sums,
                                  int* status) noexcept nogil
    Py_ssize_t (*sample_epochs_f)(fbp_optimizer_state* opt, const fbp_network* net,
                                  const fbp_batches* data, Py_ssize_t n_epochs, Py_ssize_t rows,
                                  double* data_sums, double* penalty_sums,
                                  int* status) noexcept nogil


cdef struct fbp_optimizer_state:
    # An optimiser and its state, updated in place by a run. Scalars behind
    # the buffers' void pointers are the params' float or double.
    const OptimizerFunctions* functions
    double lr
    # its hyper-parameters in the order it registered them; the slots after
    # them are its own, 0 at set time, for scalars it carries between steps
    double hyper[OPTIMIZER_HYPER]
    # params-shaped, in the order it registered them; NULL when not given
    void* buffers[OPTIMIZER_BUFFERS]
    Py_ssize_t step_count
    # the network's layer specs, for a step that treats W and b apart
    # (params_run); NULL (the tests' optimizer_update): all of it is W
    const fbp_layer* layers
    int n_layers


cdef inline Py_ssize_t params_run(const fbp_optimizer_state* opt, Py_ssize_t offset,
                                  Py_ssize_t stop, bint* is_W) noexcept nogil:
    """The end, at most ``stop``, of the run of weights (``is_W`` set) or
    of biases (cleared) in which params[offset] lies: a step that treats W
    and b apart (decoupled weight decay, on W only) walks its block
    [offset, stop) run by run."""
    cdef int l
    cdef const fbp_layer* layer
    is_W[0] = True
    if opt.layers != NULL:
        for l in range(opt.n_layers):
            layer = &opt.layers[l]
            if offset < layer.b:
                return min(layer.b, stop)
            if offset < layer.b + layer.n_out:
                is_W[0] = False
                return min(layer.b + layer.n_out, stop)
    return stop


# ---------------------------------------------------------------------------
# The registry: each optimiser's file registers itself when the module loads

cdef dict _OPTIMIZER_KINDS = {}


@cython.auto_pickle(False)  # a raw pointer to its table
cdef class OptimizerKind:
    """An optimiser the kernels know, as its file (csrc/optim_*.pxi)
    registered it: its name, its hyper-parameters with their defaults, the
    names of its parameter-shaped buffers and its functions.

    ``Trainer.set_optimizer`` takes one by name; :func:`optimizer_kinds`
    lists them. Made by the module when it loads, not by hand.
    """
    cdef const OptimizerFunctions* functions
    cdef readonly str name
    cdef readonly tuple hyper_names
    cdef readonly tuple hyper_defaults
    cdef readonly tuple buffer_names
    #: whether batch-1 fits of dense, unweighted rows take its fused
    #: per-sample epoch (besides plain SGD's, which is_plain picks)
    cdef readonly bint per_sample
    cdef dict defaults  # hyper_names -> hyper_defaults, copied by settings
    cdef object check

    def __repr__(self):
        return (f"OptimizerKind({self.name!r}, hyper={dict(zip(self.hyper_names, self.hyper_defaults))}, "
                f"buffers={self.buffer_names})")

    cdef dict settings(self, hyper, buffers):
        """The hyper-parameters by name (``hyper``, the defaults for those it
        leaves out), after the optimiser's own check of them with ``buffers``
        (a dict of buffer names, whatever their values)."""
        cdef dict values = self.defaults.copy()
        if hyper:
            for key, value in hyper.items():
                if key not in values:
                    raise ValueError(f"{self.name} has no hyper-parameter {key!r} "
                                     f"(its hyper-parameters: {', '.join(self.hyper_names)})")
                try:
                    values[key] = <double>value
                except TypeError:
                    raise TypeError(f"{key} must be a number, got {value!r}") from None
        for key in buffers:
            if key not in self.buffer_names:
                raise ValueError(f"{self.name} has no buffer {key!r} "
                                 f"(its buffers: {', '.join(self.buffer_names) or 'none'})")
        self.check(values, buffers)
        return values

    cdef void place(self, fbp_optimizer_state* opt, double lr, dict values, list arrays,
                    Py_ssize_t step_count):
        """Write this optimiser into ``opt``: ``values`` from settings,
        ``arrays`` one checked buffer (or None) per buffer name."""
        cdef int i = 0
        memset(opt, 0, sizeof(fbp_optimizer_state))
        opt.functions = self.functions
        opt.lr = lr
        for value in values.values():
            opt.hyper[i] = value
            i += 1
        i = 0
        for array in arrays:
            if array is not None:
                opt.buffers[i] = cnp.PyArray_DATA(array)
            i += 1
        opt.step_count = step_count


cdef register_optimizer(str name, const OptimizerFunctions* functions, dict hyper,
                        tuple buffer_names, check):
    """Make the optimiser ``name`` known: its functions, its hyper-parameters
    (name -> default, in the order of its hyper slots), its buffers' names
    (in the order of its buffer slots) and ``check(values, buffers)``, which
    raises a ValueError on hyper-parameters out of range or a buffer missing
    (``buffers``: the buffers given, by name)."""
    if name in _OPTIMIZER_KINDS:
        raise RuntimeError(f"two optimisers registered as {name!r}")
    if len(hyper) > OPTIMIZER_HYPER or len(buffer_names) > OPTIMIZER_BUFFERS:
        raise RuntimeError(f"{name} needs more slots than fbp_optimizer_state has: raise "
                           f"OPTIMIZER_HYPER or OPTIMIZER_BUFFERS (csrc/optimizers.pxi)")
    if (functions.advance == NULL or functions.step_d == NULL or functions.step_f == NULL
            or (functions.marked_rows_d == NULL) != (functions.marked_rows_f == NULL)
            or (functions.sample_epoch_d == NULL) != (functions.sample_epoch_f == NULL)
            or (functions.sample_epochs_d == NULL) != (functions.sample_epochs_f == NULL)
            or (functions.sample_epochs_d != NULL and functions.sample_epoch_d == NULL)):
        raise RuntimeError(f"{name}'s table lacks a function (see OptimizerFunctions)")
    cdef OptimizerKind kind = OptimizerKind.__new__(OptimizerKind)
    kind.functions = functions
    kind.name = name
    kind.hyper_names = tuple(hyper)
    kind.hyper_defaults = tuple(float(value) for value in hyper.values())
    kind.defaults = dict(zip(kind.hyper_names, kind.hyper_defaults))
    kind.buffer_names = buffer_names
    kind.per_sample = functions.sample_epoch_d != NULL
    kind.check = check
    _OPTIMIZER_KINDS[name] = kind


cdef OptimizerKind optimizer_kind(str name):
    kind = _OPTIMIZER_KINDS.get(name)
    if kind is None:
        raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(sorted(_OPTIMIZER_KINDS))})")
    return kind


def optimizer_kinds():
    """The optimisers the kernels know, by name: name -> :class:`OptimizerKind`."""
    return dict(_OPTIMIZER_KINDS)


cdef double check_hyper_range(str name, double value, double low, double high,
                              bint high_open=False) except? -1:
    """``value``, or a ValueError: it must be in [low, high] ([low, high) if
    ``high_open``). For optimisers' checks."""
    if not (low <= value and (value < high if high_open else value <= high)):
        raise ValueError(f"{name} must be in [{low:g}, {high:g}{')' if high_open else ']'}, "
                         f"got {value!r}")
    return value


cdef double check_hyper_above(str name, double value, double low,
                              bint inclusive=False) except? -1:
    """``value``, or a ValueError: it must be finite and > low (>= low if
    ``inclusive``)."""
    if not ((value >= low if inclusive else value > low) and isfinite(value)):
        raise ValueError(f"{name} must be finite and {'>=' if inclusive else '>'} {low:g}, "
                         f"got {value!r}")
    return value


cdef check_buffers_given(str name, buffers, tuple needed):
    """A ValueError unless every buffer ``needed`` by the optimiser ``name``
    is among ``buffers``."""
    for key in needed:
        if key not in buffers:
            raise ValueError(f"{name} needs a {key} buffer")


# ---------------------------------------------------------------------------
# The loops' interface to the optimiser: its table, once per batch or per
# block of parameters

cdef inline bint optimizer_is_plain(const fbp_optimizer_state* opt) noexcept nogil:
    """Whether a step is p -= opt.lr g with no state (SGD without momentum):
    the loops then fold it into the weight-gradient products (backward_sgd,
    the threads' update, the per-sample path) and write no gradient."""
    return opt.functions.is_plain != NULL and opt.functions.is_plain(opt)


cdef inline bint optimizer_steps_marked_rows(const fbp_optimizer_state* opt) noexcept nogil:
    """Whether the optimiser steps W_0 of a sparse batch in one pass with its
    L2 term (optimizer_marked_rows_step): then the backward pass leaves dW_0
    to the rows the batch marks (backward_pass with sparse_first_layer)."""
    return opt.functions.marked_rows_d != NULL


cdef enum:
    # what a sample_epoch returns when its settings have no fused epoch (SGD
    # with decay): the minibatch loop then runs the rows one by one
    SAMPLE_EPOCH_DECLINED = 2


cdef inline bint optimizer_has_sample_epoch(const fbp_optimizer_state* opt) noexcept nogil:
    """Whether the optimiser trains batch-1 rows in a fused epoch of its own
    (optimizer_sample_epoch)."""
    return opt.functions.sample_epoch_d != NULL


cdef inline int optimizer_sample_epoch(fbp_optimizer_state* opt, const fbp_network* net,
                                       const fbp_batches* data, Py_ssize_t start,
                                       Py_ssize_t stop, fbp_totals* totals,
                                       floating* dtype_tag) noexcept nogil:
    """The optimiser's fused per-sample epoch over positions [start, stop)."""
    if floating is double:
        return opt.functions.sample_epoch_d(opt, net, data, start, stop, totals)
    else:
        return opt.functions.sample_epoch_f(opt, net, data, start, stop, totals)


cdef inline Py_ssize_t optimizer_sample_epochs(fbp_optimizer_state* opt, const fbp_network* net,
                                               const fbp_batches* data, Py_ssize_t n_epochs,
                                               Py_ssize_t rows, double* data_sums,
                                               double* penalty_sums, int* status,
                                               floating* dtype_tag) noexcept nogil:
    """The optimiser's fused per-sample epochs, all in one call, or -1 where
    it has none for these settings (nothing trained)."""
    status[0] = 0
    if opt.functions.sample_epochs_d == NULL:
        return -1
    if floating is double:
        return opt.functions.sample_epochs_d(opt, net, data, n_epochs, rows, data_sums,
                                             penalty_sums, status)
    else:
        return opt.functions.sample_epochs_f(opt, net, data, n_epochs, rows, data_sums,
                                             penalty_sums, status)


cdef inline void optimizer_advance(fbp_optimizer_state* opt, StepRates* rates) noexcept nogil:
    """One step further (the step count, if the optimiser keeps one), and
    the rates of that step for optimizer_step and optimizer_marked_rows_step."""
    opt.functions.advance(opt, rates)


cdef inline void optimizer_step(const fbp_optimizer_state* opt, floating* params,
                                Py_ssize_t offset, Py_ssize_t count, const floating* grad,
                                StepRates rates) noexcept nogil:
    """One step of ``opt`` on params[offset:offset + count], whose gradient
    is grad[0:count], with the rates of the current step (optimizer_advance)."""
    if floating is double:
        opt.functions.step_d(opt, params, offset, count, grad, &rates)
    else:
        opt.functions.step_f(opt, params, offset, count, grad, &rates)


cdef inline double optimizer_marked_rows_step(const fbp_optimizer_state* opt,
                                              const fbp_network* net, Py_ssize_t i0,
                                              Py_ssize_t i1, double l2_over_m, StepRates rates,
                                              floating* dtype_tag) noexcept nogil:
    """The step on rows [i0, i1) of W_0 after a sparse batch's backward pass,
    for an optimiser that optimizer_steps_marked_rows: the gradient is the
    L2 term plus dW on the marked rows. Returns sum W^2 over the rows."""
    if floating is double:
        return opt.functions.marked_rows_d(opt, net, i0, i1, l2_over_m, &rates)
    else:
        return opt.functions.marked_rows_f(opt, net, i0, i1, l2_over_m, &rates)
