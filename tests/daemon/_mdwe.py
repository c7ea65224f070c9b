"""Exec a command with the kernel's memory-deny-write-execute flag (PR_SET_MDWE, Linux 6.3+).

This is what systemd's ``MemoryDenyWriteExecute=yes`` enforces (with a seccomp filter on
older systemd, with this very prctl on newer ones): no writable-and-executable mappings, no
making a mapping executable later. The flag survives fork and exec. Exit 77 when the kernel
does not support it.

Usage: python -m tests.daemon._mdwe PROGRAM [ARGS...]
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print(f"PR_SET_MDWE unsupported: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        sys.exit(77)
    os.execv(sys.argv[1], sys.argv[1:])  # noqa: S606 - exec is the point of this helper


if __name__ == "__main__":
    main()
