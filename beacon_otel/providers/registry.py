"""The router instances the hooks have seen in this process, and which of them are sweeping.

An object that cannot be weakly referenced is traced but not remembered (nor monitored).
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

_routers: weakref.WeakSet[Any] = weakref.WeakSet()
_sweeping: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def remember(router: Any) -> None:
    with contextlib.suppress(TypeError):
        _routers.add(router)


def routers() -> list[Any]:
    return list(_routers)


def sweep_started(router: Any) -> None:
    with contextlib.suppress(TypeError):
        _sweeping[router] = _sweeping.get(router, 0) + 1


def sweep_ended(router: Any) -> None:
    with contextlib.suppress(TypeError):
        count = _sweeping.get(router, 1) - 1
        if count > 0:
            _sweeping[router] = count
        else:
            _sweeping.pop(router, None)


def is_sweeping(router: Any) -> bool:
    with contextlib.suppress(TypeError):
        return _sweeping.get(router, 0) > 0
    return False
