"""Load the official SMPL / SMIL pickles without executing anything they name.

The official body-model files are Python-2 pickles holding numpy arrays, a scipy.sparse matrix
(the joint regressor) and chumpy ``Ch`` objects (autodiff arrays). A plain ``pickle.load``
would import and call whatever the file names, so a tampered download could run code.
:class:`RestrictedUnpickler` resolves only the handful of globals these files need; chumpy and
scipy objects become inert local placeholders that keep their pickled state, so neither chumpy
(unmaintained, broken on recent numpy) nor scipy's private pickle layout matters.

Users often re-save the files with Python 3 and without chumpy. Every pickle protocol (0-5) of
numpy arrays and scipy sparse matrices is accepted. The extra names these need:

* protocols 0-2 written by Python 3 store each bytes object as
  ``_codecs.encode(text, 'latin1')`` and an empty one as ``builtins.bytes()``: both are answered
  by narrow stand-ins (:func:`_latin1_bytes`, :func:`_empty_bytes`), never the real callables;
* protocol 5 stores contiguous arrays as in-band buffers read by numpy's ``_frombuffer``, which
  only wraps the buffer.
"""

from __future__ import annotations

import copyreg
import pickle
from typing import Any, BinaryIO

import numpy as np
import scipy.sparse


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list (it was not imported or called)."""


class ChumpyArrayState:
    """Stand-in for a pickled ``chumpy.ch.Ch``: keeps the state, runs nothing.

    chumpy pickles a ``Ch`` as its attribute dict (minus weak references); the array value
    lives under key ``'x'``, next to bookkeeping such as a set of dirty variable names.
    """

    def __setstate__(self, state: Any) -> None:
        # A dict for every chumpy version seen so far; anything else is kept for the error.
        self.pickled_state = state

    def to_array(self) -> np.ndarray:
        """The array value of the chumpy object (ValueError when there is none)."""
        state = getattr(self, 'pickled_state', None)
        if not isinstance(state, dict) or 'x' not in state:
            raise ValueError('a pickled chumpy object has no array value (no "x" in its state)')
        return np.asarray(state['x'])


class SparseMatrixState:
    """Stand-in for a pickled scipy compressed sparse matrix: keeps the state, runs nothing.

    scipy's pickled attribute names changed over the years ('shape' -> '_shape'); reading the
    state ourselves keeps old and new files loadable whatever scipy is installed.
    """

    sparse_format = ''

    def __setstate__(self, state: Any) -> None:
        self.pickled_state = state

    def to_dense(self) -> np.ndarray:
        """The matrix as a dense float64 array (ValueError if the state is incomplete)."""
        state = getattr(self, 'pickled_state', None)
        if not isinstance(state, dict):
            raise ValueError('a pickled sparse matrix has no attribute state')
        shape = state.get('_shape', state.get('shape'))
        missing = [k for k in ('data', 'indices', 'indptr') if k not in state]
        if missing or shape is None:
            raise ValueError(f'a pickled sparse matrix lacks {missing or ["shape"]}')
        build = scipy.sparse.csc_matrix if self.sparse_format == 'csc' else scipy.sparse.csr_matrix
        parts = (np.asarray(state['data']), np.asarray(state['indices']),
                 np.asarray(state['indptr']))
        return np.asarray(build(parts, shape=tuple(int(n) for n in shape)).toarray())


class CscMatrixState(SparseMatrixState):
    """Placeholder for ``scipy.sparse.csc_matrix``."""

    sparse_format = 'csc'


class CsrMatrixState(SparseMatrixState):
    """Placeholder for ``scipy.sparse.csr_matrix``."""

    sparse_format = 'csr'


def _numpy_pickle_helpers() -> tuple[Any, Any, Any]:
    # numpy moved these helpers from numpy.core to numpy._core (2.0); asking numpy how it
    # pickles avoids importing either private path.
    reconstruct = np.zeros(0).__reduce__()[0]
    scalar = np.float64(0.0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # (B,) contiguous -> the buffer path
    return reconstruct, scalar, frombuffer


_LATIN1_NAMES = frozenset({'latin1', 'latin_1', 'latin-1', 'iso-8859-1', 'iso8859-1', 'l1'})


def _latin1_bytes(text: Any, encoding: Any = 'latin1') -> bytes:
    """Stand-in for ``_codecs.encode``, which Python 3 pickles bytes with (protocols 0-2).

    Only ``codecs.encode(text, 'latin1')`` is answered. Any other codec or argument type is
    refused: a codec lookup may import modules.
    """
    if not isinstance(text, str) or not isinstance(encoding, str) \
            or encoding.lower() not in _LATIN1_NAMES:
        raise UnsafePickleError(
            f'refusing _codecs.encode with a {type(text).__name__} and codec {encoding!r}: '
            "a body-model pickle only encodes text with 'latin1'")
    return text.encode('latin1')


def _empty_bytes(*args: Any) -> bytes:
    """Stand-in for ``builtins.bytes``, which Python 3 pickles ``b''`` with (protocols 0-2).

    Arguments are refused: ``bytes(10**12)`` would allocate a terabyte.
    """
    if args:
        raise UnsafePickleError('refusing builtins.bytes with arguments: a body-model pickle '
                                'only calls it without any (an empty byte string)')
    return b''


def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct, scalar, frombuffer = _numpy_pickle_helpers()
    allowed: dict[tuple[str, str], Any] = {
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
        # Python 2 pickles name copy_reg / __builtin__; find_class sees the raw names.
        ('copy_reg', '_reconstructor'): copyreg._reconstructor,
        ('copyreg', '_reconstructor'): copyreg._reconstructor,
        ('__builtin__', 'object'): object,
        ('builtins', 'object'): object,
        # chumpy keeps a set of dirty variable names in its pickled state
        ('__builtin__', 'set'): set,
        ('builtins', 'set'): set,
        ('chumpy.ch', 'Ch'): ChumpyArrayState,
        ('chumpy', 'Ch'): ChumpyArrayState,
        # Python 3, protocols 0-2: bytes objects (array buffers) and empty bytes
        ('_codecs', 'encode'): _latin1_bytes,
        ('__builtin__', 'bytes'): _empty_bytes,
        ('builtins', 'bytes'): _empty_bytes,
    }
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed[(module, '_reconstruct')] = reconstruct
        allowed[(module, 'scalar')] = scalar
    for module in ('numpy.core.numeric', 'numpy._core.numeric'):
        allowed[(module, '_frombuffer')] = frombuffer  # protocol 5
    # The public module and every private one scipy has pickled these classes under; the
    # sparse-array classes (scipy >= 1.8) keep the same state.
    for fmt, placeholder in (('csc', CscMatrixState), ('csr', CsrMatrixState)):
        for module in ('scipy.sparse', f'scipy.sparse.{fmt}', f'scipy.sparse._{fmt}'):
            allowed[(module, f'{fmt}_matrix')] = placeholder
            allowed[(module, f'{fmt}_array')] = placeholder
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy, scipy-sparse and chumpy array classes.

    Any other global (``os.system``, ``builtins.eval``, ...) raises :class:`UnsafePickleError`
    before it is imported, so nothing in the file can run.
    """

    def __init__(self, file: BinaryIO, source: str = '<pickle>') -> None:
        # latin1 turns Python-2 byte strings (numpy array buffers) back into the same bytes.
        super().__init__(file, encoding='latin1')
        self._source = source
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        """Resolve an allow-listed global; refuse everything else."""
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f'{self._source}: refusing to load {module}.{name}: a body-model pickle may '
                'only contain numpy arrays, scipy sparse matrices and chumpy arrays. The file '
                'is not an official SMPL/SMIL model or was tampered with.') from None

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids (official files have none)."""
        raise UnsafePickleError(f'{self._source}: refusing a persistent id in the pickle')

    def load(self) -> Any:
        """Unpickle; a refusal raised by a stand-in is prefixed with the source name."""
        try:
            return super().load()
        except UnsafePickleError as err:
            if str(err).startswith(f'{self._source}: '):
                raise
            raise UnsafePickleError(f'{self._source}: {err}') from None


def restricted_load(file: BinaryIO, source: str = '<pickle>') -> Any:
    """Unpickle ``file`` with :class:`RestrictedUnpickler`.

    Args:
        file: a binary stream positioned at the start of the pickle.
        source: a name for error messages (usually the path).

    Raises:
        UnsafePickleError: the pickle names a global outside the allow-list.
        pickle.UnpicklingError, EOFError, ValueError: a truncated or corrupt pickle.
    """
    return RestrictedUnpickler(file, source).load()


def to_plain(value: Any) -> Any:
    """Replace chumpy / sparse placeholders by numpy arrays; other values are returned as-is."""
    if isinstance(value, ChumpyArrayState):
        return value.to_array()
    if isinstance(value, SparseMatrixState):
        return value.to_dense()
    return value
