"""Runs a command on a pseudo-terminal, answers prompts, prints what the terminal showed.

usage: pty-run.py '<json: {"argv": [...], "answers": [[expect_substring, reply], ...], "timeout": s}>'
Exit status: the command's. For tests of interactive paths (prompts only appear on a TTY)."""
import json, os, pty, select, sys, time

spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(spec["argv"][0], spec["argv"])
seen = b""
answers = [(a.encode(), r.encode()) for a, r in spec["answers"]]
deadline = time.time() + spec.get("timeout", 60)
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if fd in r:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    if answers and answers[0][0] in seen:
        os.write(fd, answers[0][1] + b"\r")
        seen += b"\n<<answered>>\n"
        answers.pop(0)
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode("utf-8", "replace"))
sys.exit(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8)
