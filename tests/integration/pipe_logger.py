"""A piped error logger (ErrorLog "|...") that a test can stop, as a stuck log.

Usage: pipe_logger.py LOG_FILE PID_FILE

Appends what httpd writes to LOG_FILE, line by line, so the harness reads
the error log as usual. It shrinks its pipe to one page, so that a handful of
lines fill it once the test stops this process (SIGSTOP), and writes its pid
to PID_FILE so the test knows whom to stop. While it is stopped, every httpd
process that writes to the error log blocks, as behind any log that does not
keep up.
"""

from __future__ import annotations

import fcntl
import os
import sys

F_SETPIPE_SZ = 1031      # <linux/fcntl.h>


def main() -> None:
    log_file, pid_file = sys.argv[1], sys.argv[2]
    fcntl.fcntl(0, F_SETPIPE_SZ, 4096)
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(pid_file + ".tmp", pid_file)
    with open(log_file, "ab", buffering=0) as out:
        for line in sys.stdin.buffer:
            out.write(line)


if __name__ == "__main__":
    main()
