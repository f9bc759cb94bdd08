"""Both fast deserializers, so that codec tests run against each.

``native`` is ``streamkit.codec._native_deserializer`` in whatever form imports here: the
mypyc-compiled extension after ``make`` (CI insists on it, see test_codec_walker.py), or its
interpreted source on a machine that could not compile it.
"""

from __future__ import annotations

from streamkit.codec import _fast_deserializer, _native_deserializer
from streamkit.codec._walker import Deserializer, deserializer_from_module

NATIVE_IS_COMPILED = not (_native_deserializer.__file__ or "").endswith(".py")
WALKERS: dict[str, Deserializer] = {
    "python": deserializer_from_module(_fast_deserializer, compiled=False),
    "native": deserializer_from_module(_native_deserializer, compiled=NATIVE_IS_COMPILED),
}
