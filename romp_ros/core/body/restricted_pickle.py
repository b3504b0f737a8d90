"""Load the official SMPL / SMIL pickles without executing anything they name.

The official body-model files are Python-2 pickles holding numpy arrays, a scipy.sparse matrix
(the joint regressor) and chumpy ``Ch`` objects (autodiff arrays). A plain ``pickle.load``
would import and call whatever the file names, so a tampered download could run code.
:class:`RestrictedUnpickler` resolves only the handful of globals these files need; chumpy and
scipy objects become inert local placeholders that keep their pickled state, so neither chumpy
(unmaintained, broken on recent numpy) nor scipy's private pickle layout matters.
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


def _numpy_pickle_helpers() -> tuple[Any, Any]:
    # numpy moved these helpers from numpy.core to numpy._core (2.0); asking numpy how it
    # pickles avoids importing either private path.
    reconstruct = np.zeros(0).__reduce__()[0]
    scalar = np.float64(0.0).__reduce__()[0]
    return reconstruct, scalar


def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct, scalar = _numpy_pickle_helpers()
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
    }
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed[(module, '_reconstruct')] = reconstruct
        allowed[(module, 'scalar')] = scalar
    # The public module and every private one scipy has pickled these classes under.
    for fmt, placeholder in (('csc', CscMatrixState), ('csr', CsrMatrixState)):
        for module in ('scipy.sparse', f'scipy.sparse.{fmt}', f'scipy.sparse._{fmt}'):
            allowed[(module, f'{fmt}_matrix')] = placeholder
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
