"""A reader for networks saved by dlib's DNN module (``serialize("net.dat") << net``), so no dlib at run time.

dlib's format is not self-describing: a network is written outermost layer first, each wrapper
(``add_layer``, ``add_tag_layer``, ``add_skip_layer``) writing its version and then, recursively, the
network below it, and only after that its own record. A file therefore reads as: the loss layer; a run
of wrapper versions (top of the network first); the input layer; then the layer records from the bottom
up. Records carry their layer's name (``con_4``, ``relu_``, ...); tags and skips carry nothing, so the
network that reads the layers (``ml.dlib_resnet``) knows where they sit. Every field is checked and any
surprise raises ``errors.WeightsCorrupt``. Formats are those of dlib/serialize.h and dlib/dnn/{core,
layers,input,loss,tensor}.h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import errors

# dlib's float_details marks non-finite values with these exponents (dlib/float_details.h).
_EXP_INF, _EXP_NINF, _EXP_NAN = 32000, 32001, 32002
_TENSOR_VERSION = 2  # 4-byte little-endian IEEE floats (version 1 wrote dlib floats one by one)


@dataclass(frozen=True)
class LossMetric:
    """``loss_metric_``: the metric-learning loss; its threshold is dlib's "same person" distance."""

    margin: float
    distance_threshold: float


@dataclass(frozen=True)
class InputRGBImageSized:
    """``input_rgb_image_sized<NR,NC>``: (pixel - mean) / 256, planar RGB."""

    mean_rgb: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True, eq=False)
class Con:
    """``con_``: a convolution; ``filters`` is [num_filters, channels, rows, cols], as in PyTorch."""

    filters: np.ndarray
    biases: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True, eq=False)
class Affine:
    """``affine_`` (batch norm frozen for inference): ``gamma * x + beta``, per channel in conv mode."""

    gamma: np.ndarray
    beta: np.ndarray
    conv_mode: bool


@dataclass(frozen=True)
class Relu:
    """``relu_``."""


@dataclass(frozen=True)
class Pool:
    """``max_pool_`` or ``avg_pool_``; a window of 0 means the whole input (``*_pool_everything``)."""

    kind: str  # "max" or "avg"
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AddPrev:
    """``add_prev_``: adds a tagged layer's output (which tag is part of the C++ type, not the file)."""


@dataclass(frozen=True, eq=False)
class Fc:
    """``fc_``: ``x @ weights (+ biases)`` with ``weights`` [num_inputs, num_outputs], dlib's layout."""

    weights: np.ndarray
    biases: np.ndarray | None


@dataclass(frozen=True)
class TagOrSkip:
    """``add_tag_layer`` or ``add_skip_layer``: dlib writes both as a bare version number."""


Layer = Con | Affine | Relu | Pool | AddPrev | Fc | TagOrSkip


@dataclass(frozen=True, eq=False)
class DlibNetwork:
    """A parsed dlib network: loss, input layer and the layers from the input up (the order data flows)."""

    loss: LossMetric
    input: InputRGBImageSized
    layers: tuple[Layer, ...]

    @property
    def parameter_count(self) -> int:
        """Number of learned values in the file, to compare with an architecture's own count."""
        total = 0
        for layer in self.layers:
            if isinstance(layer, Con):
                total += layer.filters.size + layer.biases.size
            elif isinstance(layer, Affine):
                total += layer.gamma.size + layer.beta.size
            elif isinstance(layer, Fc):
                total += layer.weights.size + (0 if layer.biases is None else layer.biases.size)
        return total


def read_dlib_network(path: Path) -> DlibNetwork:
    """Parse a dlib network file; ``errors.WeightsCorrupt`` says where and why a file does not parse."""
    return parse_dlib_network(Path(path).read_bytes(), source=str(path))


def parse_dlib_network(data: bytes, source: str = "<bytes>") -> DlibNetwork:
    """Parse the bytes of a dlib network saved with its loss layer (``add_loss_layer``)."""
    reader = _Reader(data, source)
    reader.expect_version("add_loss_layer", {1})
    loss = _read_loss(reader)
    # The run of wrapper versions ends where the input layer's name begins: versions are 1..3,
    # while a name's length (its first integer) is larger.
    versions: list[int] = []
    while True:
        start = reader.pos
        value = reader.integer()
        if value not in (1, 2, 3):
            reader.pos = start
            break
        versions.append(value)
    if not versions:
        raise reader.corrupt("no layers between the loss layer and the input layer")
    input_layer = _read_input(reader)
    layers: list[Layer] = []
    for depth, version in enumerate(reversed(versions)):
        layers.append(_read_wrapper_payload(reader, version, on_input=depth == 0))
    if reader.pos != len(data):
        raise reader.corrupt(f"{len(data) - reader.pos} unexpected bytes after the network")
    return DlibNetwork(loss=loss, input=input_layer, layers=tuple(layers))


class _Reader:
    """A cursor over the file with dlib's primitive decoders; every failure names the byte offset."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.source = source
        self.pos = 0

    def corrupt(self, what: str) -> errors.WeightsCorrupt:
        return errors.WeightsCorrupt(
            f"{self.source} is not a valid dlib network file: {what} (at byte {self.pos} of "
            f"{len(self.data)}); delete it and run `python -m ml.weights fetch`"
        )

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise self.corrupt(f"file ends inside {what} (truncated?)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        """dlib integer: control byte (low 4 bits: byte count, 0x80: negative), then little-endian bytes."""
        control = self.take(1, "an integer")[0]
        size = control & 0x0F
        if control & 0x70 or size > 8:
            self.pos -= 1
            raise self.corrupt(f"byte 0x{control:02x} does not start a dlib integer")
        value = int.from_bytes(self.take(size, "an integer"), "little")
        return -value if control & 0x80 else value

    def count(self, what: str) -> int:
        value = self.integer()
        if value < 0:
            raise self.corrupt(f"negative {what} ({value})")
        return value

    def real(self) -> float:
        """dlib float or double: mantissa and exponent integers, value = mantissa * 2**exponent."""
        mantissa, exponent = self.integer(), self.integer()
        if exponent == _EXP_INF:
            return math.inf
        if exponent == _EXP_NINF:
            return -math.inf
        if exponent == _EXP_NAN:
            return math.nan
        return math.ldexp(mantissa, exponent)

    def boolean(self) -> bool:
        char = self.take(1, "a boolean")
        if char not in (b"0", b"1"):
            self.pos -= 1
            raise self.corrupt(f"byte 0x{char[0]:02x} is not a dlib boolean ('0' or '1')")
        return char == b"1"

    def string(self) -> str:
        length = self.count("string length")
        raw = self.take(length, "a string")
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.corrupt("a layer name that is not ASCII text") from None

    def expect_version(self, what: str, allowed: set[int]) -> int:
        version = self.integer()
        if version not in allowed:
            raise self.corrupt(f"{what} version {version}, expected one of {sorted(allowed)}")
        return version

    def shape(self) -> tuple[int, int, int, int]:
        return (self.count("num_samples"), self.count("k"), self.count("nr"), self.count("nc"))

    def tensor(self) -> np.ndarray:
        """A resizable_tensor as a float32 array of shape (num_samples, k, nr, nc)."""
        self.expect_version("tensor", {_TENSOR_VERSION})
        shape = self.shape()
        raw = self.take(4 * math.prod(shape), f"a tensor of shape {shape}")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_shape(self) -> tuple[int, int, int, int]:
        """An alias_tensor: only the shape of a view into a layer's params."""
        self.expect_version("alias_tensor", {1})
        return self.shape()


def _read_loss(reader: _Reader) -> LossMetric:
    name = reader.string()
    if name == "loss_metric_2":
        return LossMetric(margin=reader.real(), distance_threshold=reader.real())
    if name == "loss_metric_":
        return LossMetric(margin=0.1, distance_threshold=0.75)  # dlib's values before they were saved
    raise reader.corrupt(f"unsupported loss layer '{name}' (only loss_metric is)")


def _read_input(reader: _Reader) -> InputRGBImageSized:
    name = reader.string()
    if name != "input_rgb_image_sized":
        raise reader.corrupt(f"unsupported input layer '{name}' (only input_rgb_image_sized is)")
    mean = (reader.real(), reader.real(), reader.real())
    return InputRGBImageSized(mean_rgb=mean, rows=reader.count("rows"), cols=reader.count("cols"))


def _read_wrapper_payload(reader: _Reader, version: int, on_input: bool) -> Layer:
    """What a wrapper writes after its subnetwork: nothing for a tag or skip, a layer for add_layer."""
    if version == 1:
        if on_input:
            raise reader.corrupt("a tag layer directly on the input layer (not supported)")
        return TagOrSkip()
    if version == 3 and not on_input:
        raise reader.corrupt("add_layer version 3 above the first layer")
    layer = _read_layer_details(reader)
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, output getters disabled
        reader.boolean()
    for _ in range(3):  # x_grad, cached_output, then params_grad (or grad_final on the input)
        reader.tensor()
    if version == 3:
        reader.count("sample_expansion_factor")
    return layer


def _read_layer_details(reader: _Reader) -> Layer:
    name = reader.string()
    if name == "con_4":
        return _read_con(reader)
    if name == "affine_":
        return _read_affine(reader)
    if name == "relu_":
        return Relu()
    if name in ("max_pool_2", "avg_pool_2"):
        window = (reader.count("pool rows"), reader.count("pool cols"))
        stride = (reader.count("stride_y"), reader.count("stride_x"))
        padding = (reader.count("padding_y"), reader.count("padding_x"))
        return Pool(kind=name[:3], window=window, stride=stride, padding=padding)
    if name == "add_prev_":
        return AddPrev()
    if name == "fc_2":
        return _read_fc(reader)
    raise reader.corrupt(f"unsupported layer record '{name}'")


def _split_params(
    reader: _Reader, params: np.ndarray, first: tuple[int, ...], second: tuple[int, ...], what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a layer's flat params into its two aliased views, checking that they fill it exactly."""
    flat = params.reshape(-1)
    n_first, n_second = math.prod(first), math.prod(second)
    if n_first + n_second != flat.size:
        raise reader.corrupt(f"{what}: views of {n_first} + {n_second} values over {flat.size} params")
    return flat[:n_first].reshape(first), flat[n_first:].reshape(second)


def _read_con(reader: _Reader) -> Con:
    params = reader.tensor()
    num_filters, rows, cols = reader.count("num_filters"), reader.count("rows"), reader.count("cols")
    stride = (reader.count("stride_y"), reader.count("stride_x"))
    padding = (reader.count("padding_y"), reader.count("padding_x"))
    filters_shape, biases_shape = reader.alias_shape(), reader.alias_shape()
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        reader.real()
    if filters_shape[0] != num_filters or filters_shape[2:] != (rows, cols):
        raise reader.corrupt(f"con_: filters {filters_shape} for {num_filters} filters of {rows}x{cols}")
    filters, biases = _split_params(reader, params, filters_shape, (num_filters,), "con_")
    if math.prod(biases_shape) != num_filters:
        raise reader.corrupt(f"con_: biases {biases_shape} for {num_filters} filters")
    return Con(filters=filters, biases=biases, stride=stride, padding=padding)


def _read_affine(reader: _Reader) -> Affine:
    params = reader.tensor()
    gamma_shape, beta_shape = reader.alias_shape(), reader.alias_shape()
    mode = reader.integer()
    if mode not in (0, 1) or gamma_shape != beta_shape:
        raise reader.corrupt(f"affine_: mode {mode}, gamma {gamma_shape}, beta {beta_shape}")
    gamma, beta = _split_params(reader, params, gamma_shape[1:], beta_shape[1:], "affine_")
    conv_mode = mode == 0  # dlib's layer_mode: CONV_MODE = 0, FC_MODE = 1
    if conv_mode:
        gamma, beta = gamma.reshape(-1), beta.reshape(-1)
    return Affine(gamma=gamma, beta=beta, conv_mode=conv_mode)


def _read_fc(reader: _Reader) -> Fc:
    num_outputs, num_inputs = reader.count("num_outputs"), reader.count("num_inputs")
    params = reader.tensor()
    weights_shape, biases_shape = reader.alias_shape(), reader.alias_shape()
    bias_mode = reader.integer()
    for _ in range(4):  # learning-rate and weight-decay multipliers: training only
        reader.real()
    if weights_shape != (num_inputs, num_outputs, 1, 1) or bias_mode not in (0, 1):
        raise reader.corrupt(
            f"fc_: weights {weights_shape} for {num_inputs}->{num_outputs}, mode {bias_mode}"
        )
    if math.prod(biases_shape) != (num_outputs if bias_mode == 0 else 0):
        raise reader.corrupt(f"fc_: biases {biases_shape} for {num_outputs} outputs, mode {bias_mode}")
    if bias_mode == 1:  # FC_NO_BIAS
        weights = params.reshape(-1)
        if weights.size != num_inputs * num_outputs:
            raise reader.corrupt(f"fc_: {weights.size} params for {num_inputs} x {num_outputs} weights")
        return Fc(weights=weights.reshape(num_inputs, num_outputs), biases=None)
    weights, biases = _split_params(reader, params, (num_inputs, num_outputs), (num_outputs,), "fc_")
    return Fc(weights=weights, biases=biases)
