"""The standard compressed and exported variants of one float model.

:func:`standard_variants` runs the compression pipeline (prune, cluster,
quantize-aware training, shrink, distill, each exported to an int8 file) for
:func:`kdl.report.compare`, which measures what it returns; it is also
``kdl.report.standard_variants``, where it has always been.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from kdl import _arrays, _keras_names, export
from kdl import _validation as v
from kdl.errors import UnsupportedModelError
from kdl.export import _signatures as sig

__all__ = ["STANDARD_VARIANTS", "Variants", "standard_variants"]

STANDARD_VARIANTS = (
    "keras float",
    "tflite float",
    "dynamic range",
    "float16",
    "int8",
    "pruned + int8",
    "clustered + int8",
    "pruned + clustered + int8",
    "QAT + int8",
    "shrunk + int8",
    "distilled + int8",
)


class Variants(dict):
    """What :func:`standard_variants` returns: {variant name: model or path}.

    A plain dict with one more attribute, ``sources``: variant name -> the
    Keras model its .tflite file was exported from, which :func:`compare`
    uses to count the file's parameters and multiply-adds.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sources = {}


def standard_variants(
    model,
    x,
    y=None,
    run_dir=None,
    *,
    include: tuple[str, ...] = STANDARD_VARIANTS,
    representative_data=None,
    check_data=None,
    prune_kwargs: dict | None = None,
    cluster_kwargs: dict | None = None,
    qat_kwargs: dict | None = None,
    shrink_kwargs: dict | None = None,
    distill_kwargs: dict | None = None,
    student=None,
    verbose: int = 1,
    output_dir=_keras_names.UNSET,
) -> Variants:
    """Builds the standard compressed and exported variants of one float model.

    "keras float" is ``model`` itself; "tflite float", "dynamic range",
    "float16" and "int8" are ``kdl.export.to_tflite`` files of it. The others
    are int8 files of models made with :mod:`kdl.compression` and fine-tuned
    on ``x``, ``y``: "pruned + int8" (``prune``), "clustered + int8"
    (``cluster``), "pruned + clustered + int8" (``prune``, then ``cluster``
    with ``preserve_sparsity=True``: TF-MOT's collaborative optimization),
    "QAT + int8" (``quantize_aware``), "shrunk + int8" (``shrink``, half the
    units and filters by default) and "distilled + int8" (``distill`` from
    ``model`` into ``student``; without one, into the shrunk model: prune
    first, then distill). The pruned and clustered files have one weight
    scale per kernel (``to_tflite(..., per_channel=False)``), which keeps
    their zeros and clusters compressible, or, when such a file fails its
    check, one per channel. Every file passed its LiteRT check.

    A variant that cannot be made for this model (a
    `kdl.errors.UnsupportedModelError`: e.g. int8 of a GRU, which crashes the
    converter, an int8 file that fails its check, or a layer TF-MOT cannot
    prune) is skipped with a warning saying why; the others are still built.
    Any other error, such as a bad argument inside one of the ``*_kwargs``,
    raises. ``model`` is not changed.

    Args:
        model: kdl.keras.Model. The trained float model.
        x: array, list or dict. Training inputs (for fine-tuning).
        y: array, dict or None. Training labels; None when ``x`` is a
            ``tf.data`` dataset of (inputs, labels), which then needs
            ``representative_data``. Defaults to `None`.
        run_dir: str or os.PathLike. Folder for the .tflite files (kdl's one
            name for an output folder; required).
        include: tuple of str. Which of `STANDARD_VARIANTS` to build. Defaults
            to all of them.
        representative_data: inputs or None. Calibration examples for int8.
            Defaults to `None` (the first 200 of ``x``).
        check_data: inputs or None. Examples for the LiteRT checks. Defaults to
            `None` (the representative data).
        prune_kwargs: dict or None. Keyword arguments of
            `kdl.compression.prune` (e.g. ``{"epochs": 4}``), also for the
            pruning before sparsity-preserving clustering. Defaults to `None`.
        cluster_kwargs: dict or None. Of `kdl.compression.cluster`. Defaults
            to `None`.
        qat_kwargs: dict or None. Of `kdl.compression.quantize_aware`.
            Defaults to `None`.
        shrink_kwargs: dict or None. Of `kdl.compression.shrink` (e.g.
            ``{"fraction": 0.75}``). Defaults to `None`.
        distill_kwargs: dict or None. Of `kdl.compression.distill`. Defaults
            to `None`.
        student: kdl.keras.Model or None. The student of "distilled + int8".
            Defaults to `None` (the shrunk model).
        verbose: int. 0, 1 or 2 (2 also lets the transforms and exports
            print). Defaults to `1`.
        output_dir: deprecated name of ``run_dir`` (DeprecationWarning;
            removed in the next release).

    Returns:
        Variants: a dict, variant name -> the Keras model or the .tflite
        path, in the order of `STANDARD_VARIANTS`, ready for :func:`compare`;
        its ``sources`` attribute maps each file to the Keras model it came
        from.

    Raises:
        ValueError, TypeError: for a bad argument, naming it (those in the
            ``*_kwargs`` dicts when their transform runs).

    Example:
        >>> variants = standard_variants(model, x_train, y_train, "reports",
        ...                              include=("keras float", "int8"))
        ... # doctest: +SKIP
    """
    func = "kdl.report.standard_variants"
    kwargs = {
        "prune": prune_kwargs,
        "cluster": cluster_kwargs,
        "quantize_aware": qat_kwargs,
        "shrink": shrink_kwargs,
        "distill": distill_kwargs,
    }
    run_dir = _keras_names.renamed(func, "output_dir", "run_dir", output_dir,
                                   run_dir, None)  # fmt: skip
    folder = _check_standard_args(model, run_dir, include, kwargs, student, func)
    verbose = v.check_verbose(verbose, func)
    representative_data, check_data = _checked_data(
        model, x, representative_data, check_data, func
    )
    build = _VariantBuilder(
        model,
        x,
        y,
        folder,
        kwargs={k: value or {} for k, value in kwargs.items()},
        student=student,
        representative_data=representative_data,
        check_data=check_data,
        quiet=1 if verbose > 1 else 0,
    )
    variants = Variants()
    for item in (i for i in STANDARD_VARIANTS if i in include):
        if verbose:
            print(f"standard_variants: building {item!r}...", flush=True)
        try:
            variants[item], source = build(item)
        except UnsupportedModelError as error:
            # only "this model cannot be made this way"; a bad argument (e.g.
            # in prune_kwargs) propagates (docs/design.md#errors)
            warnings.warn(
                f"standard_variants: skipped {item!r} for model "
                f"{model.name!r}: {error}",
                stacklevel=2,
            )
            continue
        if source is not None:
            variants.sources[item] = source
    return variants


def _check_standard_args(model, run_dir, include, kwargs, student, func) -> Path:
    """Checks the arguments of :func:`standard_variants`; returns the folder."""
    v.check_keras_model(model, "model", func)
    if run_dir is None:
        v.fail(func, "run_dir", "given: the folder for the .tflite files", None)
    folder = v.check_path(run_dir, "run_dir", func)
    if isinstance(include, str) or not isinstance(include, (tuple, list)):
        v.fail(
            func,
            "include",
            f"a tuple of names among {STANDARD_VARIANTS}",
            include,
            error=TypeError,
        )
    for item in include:
        v.check_choice(item, "include", func, STANDARD_VARIANTS)
    for transform, value in kwargs.items():
        arg = "qat_kwargs" if transform == "quantize_aware" else f"{transform}_kwargs"
        if value is not None and not isinstance(value, dict):
            v.fail(func, arg, "a dict or None", value, error=TypeError)
    if student is not None:
        v.check_keras_model(student, "student", func)
    return folder


def _checked_data(model, x, representative_data, check_data, func) -> tuple:
    """(representative data, check data), checked against the model's inputs."""
    specs = sig.input_specs(model, func)
    dataset = hasattr(x, "element_spec")  # tf.data: checked by the transforms
    if dataset and representative_data is None:
        v.fail(func, "representative_data", "given when x is a tf.data.Dataset "
               "(the examples int8 is calibrated on)", None)  # fmt: skip
    inputs = None if dataset else _arrays.as_inputs(specs, x, func, "x")
    if representative_data is None:
        representative_data = _arrays.take(inputs, 200)
    else:
        _arrays.as_inputs(specs, representative_data, func, "representative_data")
    if check_data is None:
        return representative_data, representative_data
    _arrays.as_inputs(specs, check_data, func, "check_data")
    return representative_data, check_data


_QUANTIZATION = {"tflite float": None, "dynamic range": "dynamic", "float16": "float16"}
# One weight scale per kernel keeps a clustered kernel's few values few in the
# file (gzip then codes them in a few bits), and compresses pruned kernels
# 10-15% better (kdl.export.to_tflite, per_channel).
_PER_KERNEL_SCALES = ("pruned + int8", "clustered + int8", "pruned + clustered + int8")


class _VariantBuilder:
    """Makes one standard variant at a time, reusing the models it made.

    "pruned + clustered + int8" clusters the "pruned + int8" model and
    "distilled + int8" distills into the "shrunk + int8" model, so each
    transform runs at most once per call of :func:`standard_variants`.
    """

    def __init__(self, model, x, y, folder, *, kwargs, student, quiet, **data):
        self.model, self.x, self.y, self.folder = model, x, y, folder
        self.kwargs, self.student, self.quiet = kwargs, student, quiet
        self.representative_data = data["representative_data"]
        self.check_data = data["check_data"]
        self.made = {}

    def _transform(self, name: str, *args, **extra):
        from kdl import compression

        options = {"verbose": self.quiet, **self.kwargs[name], **extra}
        return getattr(compression, name)(*args, self.x, self.y, **options)

    def keras_model(self, item: str):
        """The Keras model a variant exports (made once, then reused)."""
        if item in self.made:
            return self.made[item]
        if item == "pruned + int8":
            made = self._transform("prune", self.model)
        elif item == "clustered + int8":
            made = self._transform("cluster", self.model)
        elif item == "pruned + clustered + int8":
            pruned = self.keras_model("pruned + int8")
            made = self._transform("cluster", pruned, preserve_sparsity=True)
        elif item == "QAT + int8":
            made = self._transform("quantize_aware", self.model)
        elif item == "shrunk + int8":
            made = self._transform("shrink", self.model)
        elif item == "distilled + int8":
            student = self.student or self.keras_model("shrunk + int8")
            made = self._transform("distill", self.model, student)
        else:
            made = self.model
        self.made[item] = made
        return made

    def _export(self, item: str, source, *, per_channel: bool):
        quantization = _QUANTIZATION.get(item, "int8")
        slug = self.model.name.replace("/", "_")
        stem = item.replace(" + ", "_").replace(" ", "_")
        return export.to_tflite(
            source,
            self.folder / f"{slug}_{stem}.tflite",
            quantization=quantization,
            representative_data=(
                self.representative_data if quantization == "int8" else None
            ),
            check_data=self.check_data,
            per_channel=per_channel,
            verbose=self.quiet,
        )

    def __call__(self, item: str) -> tuple:
        """(the variant, the Keras model it came from or None)."""
        if item == "keras float":
            return self.model, None
        source = self.keras_model(item)
        per_kernel = item in _PER_KERNEL_SCALES
        try:
            path = self._export(item, source, per_channel=not per_kernel)
        except export.ExportCheckError:
            if not per_kernel:
                raise
            # one scale per kernel can lose the precision of channels with
            # small weights: the accurate per-channel file then
            path = self._export(item, source, per_channel=True)
        # a QAT model's wrappers hold quantizer variables: count the
        # architecture it shares with the float model instead
        return path, self.model if item == "QAT + int8" else source
