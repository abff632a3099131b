# Runs a command inside a fresh Landlock domain (used by test/cli/errors.test.ts):
#   python3 landlocked.py COMMAND ARGS...
# The ruleset handles only "make a block device", which the command never
# does: the domain changes nothing but its scope, and a process in a domain
# may not inspect processes outside it (ptrace, /proc/PID/pagemap).
# Exits 77 when the kernel has no Landlock.
import ctypes
import os
import struct
import sys

SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_ACCESS_FS_MAKE_BLOCK = 1 << 11

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
attr = ctypes.create_string_buffer(struct.pack("Q", LANDLOCK_ACCESS_FS_MAKE_BLOCK))
fd = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, 8, 0)
if fd < 0:
    print(f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    sys.exit(77)
if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0) < 0:
    print(f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    sys.exit(77)
os.close(fd)
os.execvp(sys.argv[1], sys.argv[1:])
