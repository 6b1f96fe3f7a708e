"""WeChat Pay's platform keys read from files, re-read when a message names an unknown serial.

During the move from platform certificates to the platform public key, WeChat Pay signs with
either, so the server holds both: the public key (``wechatpay_platform_public_key_file`` with
its id, and/or a ``PUB_KEY_ID_….pem`` in the keys directory) and any number of platform
certificates (``*.pem`` certificates in ``wechatpay_platform_keys_dir``, each named by its own
serial). :class:`PlatformKeyring` is the :class:`~commerce.wechatpay.PlatformKeySource` the
client and the notify handler verify with.

Hot reload, and why on an unknown serial: the moment a new key matters is the moment WeChat
signs with it, and that message names it in ``Wechatpay-Serial``. Re-reading the files then
needs no signal to reach every worker process (they share a port, not a parent that could
forward SIGHUP), no timer task, and costs nothing while the keys are known. It is
rate-limited (``reload_interval``), so a stream of forged serials cannot make the server read
its disk per request, and a message refused during that window is retried by WeChat
(notifications) or by the caller. The outgoing ``Wechatpay-Serial`` follows the keys held:
once the public key is loaded, requests name it and WeChat answers with it. A removed key
stays in use until the next reload or restart (it is WeChat's own key either way).

Logged: each reload (the kinds and serials held) and which key verified each message; never
key material. A reload that fails (an unreadable or broken file) keeps the keys held.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from commerce.wechatpay import (
    PUBLIC_KEY_ID_PREFIX,
    PlatformKey,
    PlatformKeys,
    load_platform_key,
    normalize_serial,
)

__all__ = ["PlatformKeyring", "read_platform_keys"]

log = logging.getLogger("interact.wechatpay.keys")

MAX_KEY_FILES = 64  # a keys directory holds a handful; more is a misconfiguration
MAX_KEY_FILE_BYTES = 64 * 1024


def _read(path: Path, setting: str) -> bytes:
    try:
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            raise ValueError(f"{setting}: {path.name} is too large for a PEM key")
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{setting}: cannot read {path.name} ({type(exc).__name__})") from None


def read_platform_keys(
    *,
    public_key_file: str | Path | None = None,
    public_key_id: str | None = None,
    keys_dir: str | Path | None = None,
) -> PlatformKeys:
    """The keys the files hold now; ValueError naming the setting and file, never a key.

    In ``keys_dir`` every ``*.pem`` is a platform ``CERTIFICATE`` (its serial read from it)
    or a ``PUBLIC KEY`` whose file name is its id (``PUB_KEY_ID_….pem``).
    """
    keys: dict[str, PlatformKey] = {}

    def add(key: PlatformKey) -> None:
        norm = normalize_serial(key.serial)
        held = keys.get(norm)
        if held is not None:
            if held.public_key.public_numbers() != key.public_key.public_numbers():
                raise ValueError(f"platform keys: {key.serial} names two different keys")
            return  # the same key given twice (the file and the directory): one is enough
        keys[norm] = key

    if public_key_file:
        path = Path(public_key_file)
        data = _read(path, "wechatpay_platform_public_key_file")
        add(load_platform_key(data, public_key_id or None, source=path.name))
    if keys_dir:
        folder = Path(keys_dir)
        try:
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".pem")
        except OSError as exc:
            raise ValueError(
                f"wechatpay_platform_keys_dir: cannot list it ({type(exc).__name__})"
            ) from None
        if len(files) > MAX_KEY_FILES:
            raise ValueError(f"wechatpay_platform_keys_dir: more than {MAX_KEY_FILES} .pem files")
        for path in files:
            data = _read(path, "wechatpay_platform_keys_dir")
            if b"-----BEGIN CERTIFICATE-----" in data:
                add(load_platform_key(data, None, source=path.name))
            elif path.stem.upper().startswith(PUBLIC_KEY_ID_PREFIX):
                add(load_platform_key(data, path.stem, source=path.name))
            else:
                raise ValueError(
                    f"wechatpay_platform_keys_dir: {path.name} is neither a certificate nor "
                    "a public key named by its id (PUB_KEY_ID_....pem)"
                )
    return PlatformKeys(keys.values())


class PlatformKeyring:
    """The platform keys from files, looked up by serial, re-read on an unknown serial.

    Reading at construction raises ValueError (the server does not start with broken key
    files). Later reloads happen when :meth:`find` meets a serial it does not hold, at most
    once per ``reload_interval`` seconds (0: never; a restart picks up new keys).
    """

    def __init__(
        self,
        *,
        public_key_file: str | Path | None = None,
        public_key_id: str | None = None,
        keys_dir: str | Path | None = None,
        reload_interval: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not reload_interval >= 0:
            raise ValueError("reload_interval must not be negative")
        self._files = {
            "public_key_file": public_key_file,
            "public_key_id": public_key_id,
            "keys_dir": keys_dir,
        }
        self.reload_interval = reload_interval
        self._monotonic = monotonic
        self._keys = read_platform_keys(**self._files)  # type: ignore[arg-type]
        self._last_read = monotonic()
        self.reloads = 0
        self.failed_reloads = 0
        self.verified_count: Counter[str] = Counter()
        log.info("wechatpay platform keys: %s", ", ".join(self._keys.describe()))

    def __repr__(self) -> str:
        return f"PlatformKeyring({', '.join(self._keys.describe())})"

    @property
    def keys(self) -> PlatformKeys:
        return self._keys

    def find(self, serial: str) -> PlatformKey | None:
        key = self._keys.find(serial)
        if key is None and self._may_reload():
            self.reload()
            key = self._keys.find(serial)
        return key

    def request_serial(self) -> str:
        return self._keys.request_serial()

    def verified(self, key: PlatformKey, purpose: str) -> None:
        self.verified_count[key.serial] += 1
        log.info(
            "wechatpay %s: verified by the platform %s %s", purpose, key.kind.value, key.serial
        )

    def reload(self) -> bool:
        """Read the files again now; whether the keys held changed. On an error the keys
        held stay (and the error is logged, naming the file)."""
        self._last_read = self._monotonic()
        try:
            fresh = read_platform_keys(**self._files)  # type: ignore[arg-type]
        except ValueError as exc:
            self.failed_reloads += 1
            log.warning("wechatpay platform keys: reload failed, keeping the old ones: %s", exc)
            return False
        before, after = self._keys.describe(), fresh.describe()
        self._keys = fresh
        self.reloads += 1
        if sorted(before) == sorted(after):
            return False
        log.warning(
            "wechatpay platform keys reloaded: %s (were %s)", ", ".join(after), ", ".join(before)
        )
        return True

    def _may_reload(self) -> bool:
        if self.reload_interval <= 0:
            return False
        return self._monotonic() - self._last_read >= self.reload_interval
