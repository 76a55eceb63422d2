"""fastprop networks as dependency-free C: one header, C99 and C++.

:func:`to_c` writes a header that holds the parameters as ``static const`` arrays and the
forward pass as ``static inline`` functions, in the network's type (``float`` for float32,
``double`` for float64)::

    void model_forward(const float *x, float *z);                    one sample
    void model_forward_ws(const float *x, float *z, float *work);    the same, work given
    void model_forward_batch(const float *X, float *Z, unsigned long t);   t rows
    void model_probabilities(const float *z, float *p);    classification losses only

The code needs nothing but ``<math.h>`` (link with ``-lm`` where the C library wants it),
allocates nothing, writes no global (the functions are reentrant) and compiles as C99 and
as C++. Each W_i is stored as ``model_W<i>``, l_{i+1} rows of l_i numbers in fastprop's
row-major order (each row on its own line), and every number is written so that it reads
back to the same float or double (a double with the fewest digits, a float with 9 or, when
they suffice, 6 or fewer), so the parameters are exact.

The forward pass is written as the model's equations, one call per line, in two buffers of
the widest hidden layer that take turns (``MODEL_WORK_SIZE`` numbers, ``MODEL_STACK_BYTES``
bytes on the stack for ``model_forward``; ``model_forward_ws`` takes them from the caller)::

    model_dense(u, model_W0, model_b0, a0, 4, 16);   /* z_1 = W_0 a_0 + b_0, in u */
    model_tanh(u, u, 16);                            /* a_1 = tanh(z_1), in place */

The include guard holds a hash of the content, so that two different headers of one name
included together fail to compile instead of one standing for the other. For
``loss="poisson"``, z is z_n, the log of the rate.

and the layer sizes, activations and anything around the network (the standardisation of a
model trained by ``python -m fastprop train``, the class names) are listed in a comment at
the top. It sums each product in the order of the row (no reassociation, no FMA contraction
under ``-std=c99``) and uses the C library's ``exp``, ``tanh`` and ``log1p``, so its outputs
differ from ``Network.forward`` (blocked sums, SIMD σ) by rounding only.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import __version__
from ..network import Network
from ..reference import LEAKY_RELU_SLOPE
from ._common import PROBABILITIES, Preprocessing, check_net, read_extra, write_file

__all__ = ["to_c"]

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_LINE = 96  # the width the arrays are wrapped at


class _Type:
    """The C type of a dtype, its literal suffix and its <math.h> functions."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        single = dtype == np.float32
        self.name = "float" if single else "double"
        self.suffix = "f" if single else ""
        self.exp, self.tanh, self.log1p, self.fabs, self.fmax = (
            f"{function}{self.suffix}" for function in ("exp", "tanh", "log1p", "fabs", "fmax"))

    def literals(self, values: np.ndarray) -> list[str]:
        """A C literal of each value that reads back to exactly that value of the type.

        double: Python's repr, the shortest decimal that reads back to the same double.
        float: the shortest of %.1g .. %.6g that reads back to the same float, else %.9g
        (9 significant digits read back to the same float, always); a short candidate is
        taken only when it is nearer to the float than half its spacing by a margin far
        above the rounding of the check itself (decimal to double, then to float), so that
        a compiler reading the literal directly as a float gets the same float.
        """
        values = np.asarray(values, dtype=self.dtype).reshape(-1)
        numbers = values.tolist()  # Python floats, exactly the values
        if self.dtype == np.float64:
            texts = list(map(repr, numbers))
        else:
            texts = self._float_texts(values, numbers)
        out = []
        for number, text in zip(numbers, texts):
            if text[-1] in "fn":  # inf, -inf, nan (its sign kept, its payload not)
                out.append(("-NAN" if math.copysign(1.0, number) < 0 else "NAN")
                           if text == "nan" else "INFINITY" if text == "inf" else "-INFINITY")
                continue
            if "." not in text and "e" not in text:
                text += "."
            out.append(text + self.suffix)
        return out

    @staticmethod
    def _float_texts(values: np.ndarray, numbers: list[float]) -> list[str]:
        magnitude = np.abs(values)
        finite = np.isfinite(values)
        below = magnitude - np.nextafter(magnitude, np.float32(0))
        with np.errstate(over="ignore"):  # the spacing above the largest float: inf
            above = np.spacing(magnitude)
        half = np.where(finite, 0.5 * np.minimum(above, below).astype(np.float64), 0.0)
        tolerance = half * (1 - 2.0 ** -20)
        exact = values.astype(np.float64)
        texts: list[str] = ["%.9g" % v if math.isfinite(v) else repr(v) for v in numbers] \
            if not finite.all() else [""] * len(numbers)

        def fits(indices: np.ndarray, digits: int) -> tuple[list[str], np.ndarray]:
            form = f"%.{digits}g"
            candidates = [form % numbers[i] for i in indices]
            read = np.array(candidates, dtype=np.float64)
            distance = np.abs(read - exact[indices])
            return candidates, (distance == 0) | (distance < tolerance[indices])

        everywhere = np.flatnonzero(finite)
        for i in everywhere.tolist():  # 9 digits: every float reads back exactly
            texts[i] = "%.9g" % numbers[i]
        # Round numbers (0.1, an x_mean, ...) read back from 6 digits or fewer. Which might:
        # rounded to 6 digits in double, nearer than twice the tolerance (the double
        # arithmetic errs by some 1e-16 of the value, the margin is 2^-45). Only those are
        # formatted and checked.
        x = exact[everywhere]
        magnitude_64 = np.abs(x)
        power = np.floor(np.log10(np.where(magnitude_64 > 0, magnitude_64, 1.0)))
        step = 10.0 ** (power - 5)
        near = np.abs(np.round(x / step) * step - x)
        maybe = everywhere[(near == 0) | (near < 2 * tolerance[everywhere])]
        candidates, ok = fits(maybe, 6)
        for i, text, good in zip(maybe.tolist(), candidates, ok.tolist()):
            if good:
                texts[i] = text
        short = maybe[ok]
        for digits in (5, 4, 3, 2, 1):  # the few that fit in 6 digits: fewer still?
            if not len(short):
                break
            candidates, ok = fits(short, digits)
            for i, text, good in zip(short.tolist(), candidates, ok.tolist()):
                if good:
                    texts[i] = text
            short = short[ok]
        return texts

    def literal(self, value: float) -> str:
        """The shortest C literal that reads back to exactly this value of the type."""
        if math.isnan(value):
            return "-NAN" if math.copysign(1.0, value) < 0 else "NAN"
        if math.isinf(value):
            return "INFINITY" if value > 0 else "-INFINITY"
        x = self.dtype.type(value)
        positional = np.format_float_positional(x, unique=True, trim=".")  # '3.', '0.25'
        scientific = np.format_float_scientific(x, unique=True, trim="-")  # '3e+00'
        text = min(positional, scientific, key=len)
        return text + self.suffix


def to_c(net: Network, path: str | os.PathLike[str] | None = None, name: str = "model", *,
         extra: Mapping[str, Any] | None = None) -> str:
    """The network as a C99 / C++ header; written to ``path`` too when one is given.

    Parameters
    ----------
    net : Network
    path : str or os.PathLike, optional
        Where to write the header (atomically: a temporary file, then a rename).
    name : str, default "model"
        The prefix of every name in the code (``model_forward``, ``model_W0``, ...): a C
        identifier of ASCII letters, digits and underscores that starts with a letter.
    extra : mapping, optional
        The standardisation and names around the network, as for
        :func:`fastprop.export.to_onnx`: ``x_mean`` and ``x_scale`` give
        a_0 = (x − x_mean) / x_scale inside ``<name>_forward``, ``y_mean`` and ``y_scale``
        its output y = z_n ⊙ y_scale + y_mean; ``feature_names`` and ``classes`` become
        ``<name>_feature_names`` and ``<name>_classes``. Any other key is refused.

    Returns
    -------
    str
        The C source.

    Raises
    ------
    ValueError
        When ``name`` is not such an identifier, or ``extra`` does not fit the network.
    OSError
        When ``path`` cannot be written (the message names it).
    """
    net = check_net(net)
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (a C identifier), got {type(name).__name__}")
    if not _IDENTIFIER.match(name):
        raise ValueError(f"name must be a C identifier (ASCII letters, digits and "
                         f"underscores, starting with a letter), got {name!r}")
    pre = read_extra(net, extra)
    source = _Writer(net, name, pre).source()
    if path is not None:
        write_file(path, source.encode("ascii"), "C code")
    return source


class _Writer:
    def __init__(self, net: Network, name: str, pre: Preprocessing) -> None:
        self.net, self.name, self.pre = net, name, pre
        self.T = _Type(net.dtype)
        self.layers = net.layers
        self.activations = net.activations
        self.n = net.n
        self.out: list[str] = []

    def source(self) -> str:
        self.header_comment()
        comment, self.out = self.out, []
        P = self.name.upper()
        self.emit(f"#if defined({P}_WORK_SIZE) || defined({P}_STACK_BYTES)",
                  f'#error "{P}_WORK_SIZE is defined already: another model was exported '
                  f'under this name, or one that differs only in case; export one of them '
                  f'under another name"',
                  "#endif",
                  f"#define {P}_WORK_SIZE {self.work_size()}"
                  f"  /* numbers of the workspace of {self.name}_forward_ws */",
                  f"#define {P}_STACK_BYTES {self.stack_bytes()}"
                  f"  /* what a call of {self.name}_forward keeps on the stack */", "",
                  "#include <math.h>", "")
        self.parameters()
        self.names()
        self.helpers()
        self.forward()
        body = "\n".join(self.out) + "\n"
        # Unique per content: two different headers of one name both get included, and
        # their definitions then clash at compile time instead of one silently standing
        # for the other; the same header included twice is read once.
        digest = hashlib.sha256(body.encode("ascii")).hexdigest()[:12].upper()
        guard = f"FASTPROP_{P}_{digest}_H"
        return ("\n".join(comment) + "\n" + f"#ifndef {guard}\n#define {guard}\n\n" + body
                + f"#endif /* {guard} */\n")

    def emit(self, *lines: str) -> None:
        self.out.extend(lines)

    # ------------------------------------------------------------------ the comment
    def header_comment(self) -> None:
        net, p, T, pre = self.net, self.name, self.T.name, self.pre
        l_0, l_n = self.layers[0], self.layers[-1]
        rows = [("layers l_0..l_n", f"{', '.join(map(str, self.layers))}  (n = {self.n})")]
        for i, sigma in enumerate(self.activations, start=1):
            rows.append((f"sigma_{i}", f"{sigma}  (a_{i} = {sigma}(z_{i}))"))
        rows.append(("bias", f"b_0 .. b_{self.n - 1}" if net.bias else "none"))
        rows.append(("type", f"{T} ({net.dtype.name})"))
        rows.append(("loss", net.loss_name))
        if pre.standardises_input:
            rows.append(("input", f"standardised: a_0 = (x - {p}_x_mean) / {p}_x_scale"))
        if pre.feature_names is not None:
            rows.append(("features", ", ".join(map(_comment_text, pre.feature_names))))
        if pre.standardises_output:
            rows.append(("output", f"y = z_n * {p}_y_scale + {p}_y_mean (the target in its "
                                   f"units)"))
        if net.loss_name in PROBABILITIES:
            rows.append(("probabilities", f"{p}_probabilities(z, p): p = "
                                          f"{PROBABILITIES[net.loss_name]}(z_n)"))
        if pre.classes is not None:
            rows.append(("classes", ", ".join(map(_comment_text, pre.classes))))
        if pre.target_names is not None:
            rows.append(("target", ", ".join(map(_comment_text, pre.target_names))))
        width = max(len(key) for key, _ in rows)
        output = "y" if pre.standardises_output else "z_n"
        lines = [f"A feedforward network exported by fastprop {__version__}: C99, also valid "
                 f"C++.",
                 "Nothing but <math.h> (link with -lm), no allocation, no global that is "
                 "written.", ""]
        lines += [f"  {key:<{width}}  {value}" for key, value in rows]
        dense = "z_{i+1} = W_i a_i + b_i" if net.bias else "z_{i+1} = W_i a_i"
        standardised = "(standardised, as above)" if pre.standardises_input else ""
        lines += ["", "The model, for one sample x:",
                  f"  {'a_0     = x':<26}{standardised}",
                  f"  {dense:<26}W_i: {p}_W<i>, l_{{i+1}} rows of l_i numbers"
                  + (f", b_i: {p}_b<i>" if net.bias else ""),
                  f"  {'a_i     = sigma_i(z_i)':<26}for the hidden layers 1 <= i <= n-1",
                  f"  {'output    z_n':<26}(no activation)", "",
                  f"void {p}_forward(const {T} *x, {T} *z);",
                  f"    x: the l_0 = {l_0} inputs of one sample; z receives its l_n = {l_n} "
                  f"outputs ({output}).",
                  f"void {p}_forward_batch(const {T} *X, {T} *Z, unsigned long t);",
                  f"    t samples: X holds t rows of {l_0} inputs, Z receives t rows of {l_n}."]
        if net.loss_name in PROBABILITIES:
            lines += [f"void {p}_probabilities(const {T} *z, {T} *p);",
                      f"    p receives the {l_n} probabilities "
                      f"{PROBABILITIES[net.loss_name]}(z_n) of the outputs z of {p}_forward."]
        P = p.upper()
        lines += [f"void {p}_forward_ws(const {T} *x, {T} *z, {T} *work);",
                  f"    {p}_forward with a workspace of the caller: work holds {P}_WORK_SIZE = "
                  f"{self.work_size()}",
                  f"    numbers (static memory, say, on a microcontroller); nothing is kept "
                  f"on the stack.",
                  "", f"A call of {p}_forward keeps {P}_STACK_BYTES = {self.stack_bytes()} "
                      f"bytes on the stack: the workspace, two",
                  "buffers of the widest hidden layer that take turns holding z_i (a_i in "
                  "place) and z_{i+1}."]
        self.emit("/*", *[f" * {line}".rstrip() for line in lines], " */", "")

    def buffers(self) -> tuple[int, int]:
        """(how many buffers the forward pass needs, 0 to 2; the numbers in each): a_0 when
        standardised and the z_i (a_i computed in place) of the hidden layers, in turns."""
        kept = list(self.layers[1:-1])
        if self.pre.standardises_input:
            kept.insert(0, self.layers[0])
        return min(len(kept), 2), max(kept, default=0)

    def work_size(self) -> int:
        """The numbers of the workspace: at least 1, so that an array of it can be declared."""
        count, width = self.buffers()
        return max(count * width, 1)

    def stack_bytes(self) -> int:
        return self.work_size() * self.net.dtype.itemsize

    # ------------------------------------------------------------------ data
    def array(self, name: str, values: np.ndarray, comment: str, row: int | None = None) -> None:
        """static const T name[size] = {...}; one row per line (wrapped), when row is given."""
        T = self.T
        values = np.asarray(values, dtype=self.net.dtype).reshape(-1)
        row = row or len(values) or 1
        self.emit(f"/* {comment} */",
                  f"static const {T.name} {self.name}_{name}[{len(values)}] = {{")
        texts = [text + "," for text in T.literals(values)]
        for start in range(0, len(values), row):
            self.emit(*_wrap(texts[start:start + row]))
        self.emit("};", "")

    def parameters(self) -> None:
        net = self.net
        biases = net.biases if net.bias else []  # each property builds all its views: once
        for i, W in enumerate(net.weights):
            l_in, l_out = self.layers[i], self.layers[i + 1]
            self.array(f"W{i}", W, f"W_{i}: l_{i + 1} = {l_out} rows of l_{i} = {l_in} "
                                   f"numbers, one row per line", row=l_in)
            if net.bias:
                self.array(f"b{i}", biases[i], f"b_{i}: l_{i + 1} = {l_out} numbers")
        pre = self.pre
        if pre.standardises_input:
            l_0 = self.layers[0]
            self.array("x_mean", _or(pre.x_mean, 0.0, l_0), "x_mean: subtracted from x")
            self.array("x_scale", _or(pre.x_scale, 1.0, l_0), "x_scale: divides x - x_mean")
        if pre.standardises_output:
            l_n = self.layers[-1]
            self.array("y_scale", _or(pre.y_scale, 1.0, l_n), "y_scale: multiplies z_n")
            self.array("y_mean", _or(pre.y_mean, 0.0, l_n), "y_mean: added to z_n * y_scale")

    def names(self) -> None:
        for key, what in (("feature_names", "the inputs x_0 .. x_{l_0 - 1}, in order"),
                          ("classes", "the classes, in the order of the outputs")):
            names = getattr(self.pre, key)
            if names is not None:
                self.emit(f"/* {what} */",
                          f"static const char *const {self.name}_{key}[{len(names)}] = {{",
                          *_wrap([_string_literal(n) + "," for n in names]), "};", "")

    # ------------------------------------------------------------------ code
    def helpers(self) -> None:
        p, T = self.name, self.T
        t = T.name
        uses = set(self.activations)
        if PROBABILITIES.get(self.net.loss_name) == "sigmoid":
            uses.add("sigmoid")
        indent = " " * len(f"static inline void {p}_dense(")
        if self.net.bias:
            self.emit("/* z_next = W a + b: W has l_out rows of l_in numbers */",
                      f"static inline void {p}_dense({t} *z_next, const {t} *W, const {t} *b, "
                      f"const {t} *a,",
                      f"{indent}unsigned long l_in, unsigned long l_out)")
        else:
            self.emit("/* z_next = W a: W has l_out rows of l_in numbers */",
                      f"static inline void {p}_dense({t} *z_next, const {t} *W, const {t} *a,",
                      f"{indent}unsigned long l_in, unsigned long l_out)")
        self.emit("{", "    unsigned long j, k;", "    for (j = 0; j < l_out; ++j) {",
                  f"        {t} s = 0;", "        for (k = 0; k < l_in; ++k)",
                  "            s += W[j * l_in + k] * a[k];",
                  f"        z_next[j] = s{' + b[j]' if self.net.bias else ''};", "    }", "}", "")
        bodies = {
            "sigmoid": ("a = 1 / (1 + e^-z), without overflow: e = e^-|z| <= 1",
                        [f"{t} e = {T.exp}(-{T.fabs}(z[j]));",
                         "a[j] = z[j] >= 0 ? 1 / (1 + e) : e / (1 + e);"]),
            "tanh": ("a = tanh(z)", [f"a[j] = {T.tanh}(z[j]);"]),
            "relu": ("a = max(z, 0)", ["a[j] = z[j] < 0 ? 0 : z[j];"]),
            "leaky_relu": (f"a = z, or {LEAKY_RELU_SLOPE} z where z < 0",
                           [f"a[j] = z[j] < 0 ? {T.literal(LEAKY_RELU_SLOPE)} * z[j] : z[j];"]),
            "softplus": ("a = log(1 + e^z) = max(z, 0) + log(1 + e^-|z|), without overflow",
                         [f"a[j] = {T.fmax}(z[j], 0) + {T.log1p}({T.exp}(-{T.fabs}(z[j])));"]),
        }
        for sigma in ("sigmoid", "tanh", "relu", "leaky_relu", "softplus"):
            if sigma in uses:
                comment, body = bodies[sigma]
                self.emit(f"/* {comment} */",
                          f"static inline void {p}_{sigma}({t} *a, const {t} *z, unsigned long l)",
                          "{", "    unsigned long j;", "    for (j = 0; j < l; ++j) {",
                          *[f"        {line}" for line in body], "    }", "}", "")
        l_0, l_n = self.layers[0], self.layers[-1]
        if self.pre.standardises_input:
            self.emit("/* a_0 = (x - x_mean) / x_scale */",
                      f"static inline void {p}_standardise({t} *a0, const {t} *x)", "{",
                      "    unsigned long j;", f"    for (j = 0; j < {l_0}; ++j)",
                      f"        a0[j] = (x[j] - {p}_x_mean[j]) / {p}_x_scale[j];", "}", "")
        if self.pre.standardises_output:
            self.emit("/* y = z_n * y_scale + y_mean, in place */",
                      f"static inline void {p}_destandardise({t} *z)", "{",
                      "    unsigned long j;", f"    for (j = 0; j < {l_n}; ++j)",
                      f"        z[j] = z[j] * {p}_y_scale[j] + {p}_y_mean[j];", "}", "")

    def forward(self) -> None:
        p, t, n, layers, net = self.name, self.T.name, self.n, self.layers, self.net
        P = p.upper()
        count, width = self.buffers()
        output = "y" if self.pre.standardises_output else "z_n"
        self.emit(f"/* {output} of one sample: x has l_0 = {layers[0]} numbers, z receives "
                  f"l_n = {layers[-1]}; work holds {P}_WORK_SIZE numbers */",
                  f"static inline void {p}_forward_ws(const {t} *x, {t} *z, {t} *work)", "{")
        body: list[tuple[str, str]] = []
        names = ["u", "v"][:count]
        if count == 0:
            body.append(("(void)work;", "no layer between input and output to keep"))
        elif count == 1:
            body.append((f"{t} *u = work;", f"a buffer of {width} numbers"))
        else:
            body.append((f"{t} *u = work, *v = work + {width};",
                         f"two buffers of {width} numbers, taking turns"))
        turn = 0
        if self.pre.standardises_input:
            body.append((f"{p}_standardise(u, x);", "a_0 = (x - x_mean) / x_scale, in u"))
            a, turn = "u", 1
        else:
            a = "a0"
            body.append((f"const {t} *a0 = x;", "a_0 = x"))
        for i in range(n):
            target = "z" if i == n - 1 else names[turn % count]
            bias = f"{p}_b{i}, " if net.bias else ""
            equation = f"z_{i + 1} = W_{i} a_{i}{f' + b_{i}' if net.bias else ''}"
            where = " = z_n" if i == n - 1 else f", in {target}"
            body.append((f"{p}_dense({target}, {p}_W{i}, {bias}{a}, {layers[i]}, "
                         f"{layers[i + 1]});", equation + where))
            if i + 1 < n:
                sigma = self.activations[i]
                if sigma == "identity":
                    body.append(("", f"a_{i + 1} = z_{i + 1} (identity)"))
                else:
                    body.append((f"{p}_{sigma}({target}, {target}, {layers[i + 1]});",
                                 f"a_{i + 1} = {sigma}(z_{i + 1}), in place"))
                a, turn = target, turn + 1
        if self.pre.standardises_output:
            body.append((f"{p}_destandardise(z);", "y = z_n * y_scale + y_mean"))
        width_code = max(len(code) for code, _ in body)
        for code, comment in body:
            if not code:
                self.emit(f"    /* {comment} */")
            else:
                self.emit(f"    {code:<{width_code}}  /* {comment} */" if comment
                          else f"    {code}")
        self.emit("}", "")
        self.emit(f"/* {p}_forward_ws with its workspace on the stack ({P}_STACK_BYTES bytes) */",
                  f"static inline void {p}_forward(const {t} *x, {t} *z)", "{",
                  f"    {t} work[{P}_WORK_SIZE];", f"    {p}_forward_ws(x, z, work);", "}", "")
        l_0, l_n = layers[0], layers[-1]
        self.emit(f"/* {p}_forward for each of t rows: X is (t, {l_0}), Z is (t, {l_n}) */",
                  f"static inline void {p}_forward_batch(const {t} *X, {t} *Z, unsigned long t)",
                  "{", "    unsigned long s;", f"    {t} work[{P}_WORK_SIZE];",
                  "    for (s = 0; s < t; ++s)",
                  f"        {p}_forward_ws(X + s * {l_0}, Z + s * {l_n}, work);", "}", "")
        link = PROBABILITIES.get(net.loss_name)
        if link == "softmax":
            self.emit("/* p = softmax(z_n): p_j = e^(z_j - max z) / sum_k e^(z_k - max z) */",
                      f"static inline void {p}_probabilities(const {t} *z, {t} *p)", "{",
                      "    unsigned long j;", f"    {t} m = z[0], s = 0;",
                      f"    for (j = 1; j < {l_n}; ++j)", "        if (z[j] > m)",
                      "            m = z[j];", f"    for (j = 0; j < {l_n}; ++j) {{",
                      f"        p[j] = {self.T.exp}(z[j] - m);", "        s += p[j];", "    }",
                      f"    for (j = 0; j < {l_n}; ++j)", "        p[j] /= s;", "}", "")
        elif link == "sigmoid":
            self.emit("/* p = sigmoid(z_n), each output */",
                      f"static inline void {p}_probabilities(const {t} *z, {t} *p)", "{",
                      f"    {p}_sigmoid(p, z, {l_n});", "}", "")


def _or(value: np.ndarray | None, default: float, size: int) -> np.ndarray:
    return np.full(size, default) if value is None else value


def _wrap(items: list[str], indent: str = "    ") -> list[str]:
    """Items separated by spaces, in lines of at most _LINE characters."""
    lines, start, width = [], 0, len(indent)
    for end, size in enumerate(map(len, items)):
        if width + size + 1 > _LINE and end > start:
            lines.append(indent + " ".join(items[start:end]))
            start, width = end, len(indent)
        width += size + 1
    if start < len(items):
        lines.append(indent + " ".join(items[start:]))
    return lines


def _string_literal(text: str) -> str:
    """A C string literal of the UTF-8 bytes of text; octal escapes for all but plain ASCII
    (and for ? so that no trigraph forms)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if 32 <= byte < 127 and char not in '"\\?':
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _comment_text(text: str) -> str:
    """text for a comment: ASCII without the characters that could end it or form a
    trigraph or a line splice (*, /, ?, \\), each of those shown as _."""
    return "".join(c if 32 <= ord(c) < 127 and c not in "*/?\\" else "_" for c in text)
